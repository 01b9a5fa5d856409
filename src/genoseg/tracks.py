"""Tracks: one bigWig of probabilities per feature.

Values are the decoded probabilities (``q / 255``, float in ``[0, 1]``) at single-base
resolution; coordinates 0-based half-open as in bedGraph (``[start, end)``). Bases
without a prediction (no row in the dataset) get no entry, so they read as missing
(NaN with pyBigWig, no data in IGV/UCSC). Equal consecutive values are written as one
run (bedGraph-style entries), which keeps files small: the 8-bit encoding makes long
runs common.

The header lists every contig of ``chrom_sizes`` in the given order (the FASTA's ``.fai``
order) so the files can be shown against that assembly; entries are written contig by
contig in header order and sorted by position, streaming one batch at a time (memory:
one batch of probabilities).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Mapping, Optional, Sequence, Union

import numpy as np

from .calls import _features_subset, open_dataset
from . import store
from .errors import GenosegError
from .outputs import atomic_path, escape_name

log = logging.getLogger(__name__)


def read_fai(path: str) -> dict[str, int]:
    """Contig lengths (bp) from a samtools ``.fai`` index, in file order."""
    if not os.path.exists(path):
        raise GenosegError(f"FASTA index {path} does not exist")
    sizes: dict[str, int] = {}
    with open(path) as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            a = line.rstrip("\n").split("\t")
            try:
                sizes[a[0]] = int(a[1])
            except (IndexError, ValueError):
                raise GenosegError(f"{path}:{n}: not a .fai line (name<TAB>length...)") from None
    if not sizes:
        raise GenosegError(f"{path} lists no contigs")
    return sizes


def fasta_sizes(path: str) -> dict[str, int]:
    """Contig lengths of a FASTA (its ``.fai``, built by pysam if missing)."""
    if os.path.exists(path + ".fai"):
        return read_fai(path + ".fai")
    if not os.path.exists(path):
        raise GenosegError(f"FASTA {path} does not exist")
    import pysam
    try:
        with pysam.FastaFile(path) as fa:
            return dict(zip(fa.references, map(int, fa.lengths)))
    except (OSError, ValueError) as exc:
        raise GenosegError(f"cannot index FASTA {path}: {exc}") from exc


def sizes_from_dataset(dataset_dir: str) -> dict[str, int]:
    """Contig lengths inferred from the dataset: last predicted position + 1 (reads ``pos`` only)."""
    sizes = {}
    for contig in store.list_contigs(dataset_dir):
        last = -1
        for pos, _ in store.iter_predictions(dataset_dir, contig):
            if len(pos):
                last = int(pos[-1])
        if last >= 0:
            sizes[contig] = last + 1
    return sizes


def _runs(pos: np.ndarray, vals: np.ndarray):
    """Collapse consecutive bases with equal values into ``[start, end)`` runs."""
    n = len(pos)
    brk = np.empty(n, bool)
    brk[0] = True
    brk[1:] = (np.diff(pos) != 1) | (vals[1:] != vals[:-1])
    idx = np.flatnonzero(brk)
    starts = pos[idx]
    last = np.empty(len(idx), np.int64)
    last[:-1] = idx[1:] - 1
    last[-1] = n - 1
    return starts, pos[last] + 1, vals[idx]


def _add(bw, contig: str, pos: np.ndarray, vals: np.ndarray, b0: np.ndarray, b1: np.ndarray) -> int:
    """Add one batch of one feature: runs of equal values as bedGraph entries when that
    compresses (long flat stretches, the usual case), else fixed-step (span 1) entries per
    contiguous block. Returns the number of entries written."""
    s, e, v = _runs(pos, vals)
    if len(s) * 4 <= len(pos):
        bw.addEntries([contig] * len(s), s, ends=e, values=v)
        return len(s)
    for a, b in zip(b0.tolist(), b1.tolist()):
        bw.addEntries(contig, int(pos[a]), values=vals[a:b], span=1, step=1)
    return len(pos)


def _write_group(dataset_dir, tmp, feats, fidx, names, header, contigs, batch_rows) -> tuple[int, int]:
    """Write the bigWigs of ``feats`` (columns ``fidx``) into ``tmp``: one pass over the
    dataset. Returns (bases, entries)."""
    import pyBigWig

    contigs = set(contigs)
    bases = entries = 0
    bws = {}
    try:
        for f in feats:
            bw = pyBigWig.open(os.path.join(tmp, names[f]), "w")
            if bw is None:
                raise GenosegError(f"cannot create bigWig in {tmp}")
            bw.addHeader(header, maxZooms=10)
            bws[f] = bw
        for contig, size in header:
            if contig not in contigs:
                continue
            for pos, probs in store.iter_predictions(dataset_dir, contig, batch_rows=batch_rows):
                if len(pos) == 0:
                    continue
                if pos[-1] >= size:
                    raise GenosegError(f"predictions on {contig!r} reach position {int(pos[-1])}, beyond its "
                                       f"length {size} in the chromosome sizes")
                pos = np.asarray(pos, np.int64)
                bases += len(pos)
                blk = np.flatnonzero(np.diff(pos) != 1) + 1  # contiguous blocks of the batch
                b0 = np.concatenate(([0], blk))
                b1 = np.concatenate((blk, [len(pos)]))
                for f, j in zip(feats, fidx):
                    vals = np.ascontiguousarray(probs[:, j], dtype=np.float64)
                    entries += _add(bws[f], contig, pos, vals, b0, b1)
    finally:
        for bw in bws.values():
            bw.close()
    return bases, entries


def write_tracks(dataset_dir: str, tracks_dir: str,
                 chrom_sizes: Union[Mapping[str, int], str, None] = None, overwrite: bool = False, *,
                 features: Optional[Sequence[str]] = None, batch_rows: int = 1_000_000,
                 workers: int = 1) -> dict:
    """Write ``<tracks_dir>/<feature>.bw`` for each feature of a prediction dataset.

    Args:
        dataset_dir: ``OUTDIR/<backbone>/predictions``.
        tracks_dir: output directory, created atomically (appears only when complete).
        chrom_sizes: contig → length (bp) in header order, or a path to a ``.fai``; None:
            contigs of the dataset with last position + 1 (an extra pass over ``pos``).
        overwrite: replace an existing ``tracks_dir`` (else GenosegError).
        features: subset of features (default all).
        batch_rows: rows per streamed batch.
        workers: processes writing files in parallel (features are split between them;
            each streams the dataset once). bigWig writing (zoom levels) is CPU-bound.

    Returns:
        dict with ``files`` (feature → file name), ``bases``, ``entries``, ``seconds``.
    """
    t0 = time.time()
    meta = open_dataset(dataset_dir)
    all_features = list(meta["features"])
    feats = _features_subset(all_features, features)
    fidx = [all_features.index(f) for f in feats]
    if isinstance(chrom_sizes, (str, os.PathLike)):
        chrom_sizes = read_fai(os.fspath(chrom_sizes))
    elif chrom_sizes is None:
        chrom_sizes = sizes_from_dataset(dataset_dir)
    chrom_sizes = {str(k): int(v) for k, v in chrom_sizes.items()}
    contigs = set(store.list_contigs(dataset_dir))
    missing = sorted(contigs - set(chrom_sizes))
    if missing:
        raise GenosegError(f"contig(s) {', '.join(map(repr, missing[:5]))} of the predictions are not in the "
                           f"chromosome sizes (.fai); use the FASTA the predictions were made from")
    names = {f: escape_name(f) + ".bw" for f in feats}
    header = [(c, n) for c, n in chrom_sizes.items() if n > 0]
    result = {"files": names, "bases": 0, "entries": 0}
    with atomic_path(tracks_dir, overwrite=overwrite, is_dir=True) as tmp:
        workers = max(1, min(int(workers or 1), len(feats)))
        groups = [list(range(k, len(feats), workers)) for k in range(workers)]
        jobs = [(dataset_dir, tmp, [feats[i] for i in g], [fidx[i] for i in g], names, header, sorted(contigs),
                 batch_rows) for g in groups if g]
        if len(jobs) == 1:
            parts = [_write_group(*jobs[0])]
        else:
            import concurrent.futures as cf
            import multiprocessing as mp
            with cf.ProcessPoolExecutor(len(jobs), mp_context=mp.get_context("spawn")) as ex:
                parts = list(ex.map(_write_group, *zip(*jobs)))
        result["bases"] = parts[0][0]
        result["entries"] = sum(e for _, e in parts)
    result["seconds"] = round(time.time() - t0, 3)
    log.info("wrote %d bigWig tracks (%d bases, %d entries) in %.1f s to %s", len(feats), result["bases"],
             result["entries"], result["seconds"], tracks_dir)
    return result
