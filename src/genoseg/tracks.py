"""Tracks: one bigWig of probabilities per feature.

Values are the decoded probabilities (``q / 255``, float in ``[0, 1]``) at single-base
resolution; coordinates 0-based half-open as in bedGraph (``[start, end)``). Bases
without a prediction (no row in the dataset) get no entry, so they read as missing
(NaN with pyBigWig, no data in IGV/UCSC). Equal consecutive values are written as one
run (bedGraph-style entries) where runs are long (12 bp on average or more); elsewhere
values are fixed-step, span 1 (see :mod:`genoseg.bigwig`).

The header lists every contig of ``chrom_sizes`` in the given order (the FASTA's ``.fai``
order) so the files can be shown against that assembly; entries are written contig by
contig in header order and sorted by position, streaming one frame at a time (memory:
one frame of codes). Files are written by :mod:`genoseg.bigwig` (vectorised; libBigWig
adds entries one by one and was 10-50x slower); features are split between ``threads``
worker processes, and the files are byte-identical whatever their number.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Mapping, Optional, Sequence, Union

import numpy as np

from .calls import _features_subset, _rows, open_dataset
from . import frames, store
from .errors import GenosegError
from .outputs import atomic_path, escape_name
from .parallel import check_threads, processes_for, run_jobs, split_round_robin

log = logging.getLogger(__name__)

#: rows per frame: one Parquet row group (fewer, larger numpy calls per feature: ~10 %
#: faster than 2^18; memory ~40 bytes per row per worker)
FRAME_ROWS = store.ROW_GROUP


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
    """Contig lengths inferred from the dataset: last predicted position + 1 (footer statistics)."""
    return {c: e for c, e in frames.predicted_ends(dataset_dir, store.list_contigs(dataset_dir)).items() if e > 0}


def _write_group(dataset_dir, tmp, feats, names, header, contigs, batch_rows) -> tuple[int, int]:
    """Write the bigWigs of ``feats`` into ``tmp``: one pass over the dataset (contigs in
    header order), each frame's row structure computed once for all features. Returns
    (bases, entries)."""
    from .bigwig import CELL, BigWigWriter, Header, Layout

    hdr = Header(header)
    by_name = {c: i for i, (c, _) in enumerate(header)}
    ids = np.array([by_name[c] for c in contigs], np.int64)
    frame_rows = int(batch_rows or FRAME_ROWS)
    bases = entries = 0
    bws = [BigWigWriter(os.path.join(tmp, names[f]), hdr, scale=store.SCALE) for f in feats]
    try:
        for fr in frames.iter_frames(dataset_dir, contigs, feats, frame_rows,
                                     align=CELL if frame_rows > CELL else None):
            bases += fr.n
            lay = Layout(fr.pos, ids[fr.piece_cid], fr.piece_len, hdr.reductions[0])
            for k, bw in enumerate(bws):
                entries += bw.add(lay, fr.codes[k])
        for bw in bws:
            bw.close()
    except BaseException:
        for bw in bws:
            bw.abort()
        raise
    return bases, entries


def write_tracks(dataset_dir: str, tracks_dir: str,
                 chrom_sizes: Union[Mapping[str, int], str, None] = None, overwrite: bool = False, *,
                 features: Optional[Sequence[str]] = None, batch_rows: Optional[int] = None,
                 threads: Optional[int] = 1, workers: Optional[int] = None) -> dict:
    """Write ``<tracks_dir>/<feature>.bw`` for each feature of a prediction dataset.

    Args:
        dataset_dir: ``OUTDIR/<backbone>/predictions``.
        tracks_dir: output directory, created atomically (appears only when complete).
        chrom_sizes: contig → length (bp) in header order, or a path to a ``.fai``; None:
            contigs of the dataset with last position + 1. Every contig of the
            predictions must be in it, no longer than it says (checked first).
        overwrite: replace an existing ``tracks_dir`` (else GenosegError).
        features: subset of features (default all).
        batch_rows: rows per streamed frame.
        threads: worker processes (features are split between them, each streams the
            dataset once; files are identical whatever the number); ``None``: the
            task's cores. ``workers``: deprecated name of ``threads``.

    Returns:
        dict with ``files`` (feature → file name), ``bases``, ``entries``, ``seconds``.
    """
    t0 = time.time()
    meta = open_dataset(dataset_dir)
    all_features = list(meta["features"])
    feats = _features_subset(all_features, features)
    threads = check_threads(workers if workers is not None and threads in (None, 1) else threads)
    source = "the chromosome sizes given"
    if isinstance(chrom_sizes, (str, os.PathLike)):
        source, chrom_sizes = os.fspath(chrom_sizes), read_fai(os.fspath(chrom_sizes))
    elif chrom_sizes is None:
        chrom_sizes = sizes_from_dataset(dataset_dir)
    chrom_sizes = {str(k): int(v) for k, v in chrom_sizes.items()}
    have = set(store.list_contigs(dataset_dir))
    frames.check_sizes(dataset_dir, sorted(have), chrom_sizes, source)
    names = {f: escape_name(f) + ".bw" for f in feats}
    header = [(c, n) for c, n in chrom_sizes.items() if n > 0]
    contigs = [c for c, _ in header if c in have]
    result = {"files": names, "bases": 0, "entries": 0}
    with atomic_path(tracks_dir, overwrite=overwrite, is_dir=True) as tmp:
        groups = split_round_robin(len(feats), processes_for(threads, _rows(meta, contigs)))
        jobs = [(dataset_dir, tmp, [feats[i] for i in g], names, header, contigs, batch_rows) for g in groups]
        parts = run_jobs(_write_group, jobs, len(jobs))
        result["bases"] = parts[0][0]
        result["entries"] = sum(e for _, e in parts)
    result["seconds"] = round(time.time() - t0, 3)
    log.info("wrote %d bigWig tracks (%d bases, %d entries) in %.1f s to %s", len(feats), result["bases"],
             result["entries"], result["seconds"], tracks_dir)
    return result
