"""Calling: per-feature probabilities → intervals (BED + GFF3).

Coordinates: 0-based half-open ``[start, end)`` in memory and in BED; GFF3 is 1-based
closed (``start + 1 .. end``). Lengths and gaps are in bases (bp). Probabilities are
floats in ``[0, 1]`` (the store decodes ``uint8`` as ``q / 255``).

Algorithm, per feature and per contig, streaming batch by batch:

1. **Hysteresis.** A base is *strong* if ``p >= high`` and *weak* if ``p >= low``
   (``low <= high``; comparisons use a 1e-6 tolerance so a threshold on the 1/255 grid
   is met by the value equal to it; on a dataset they are made on the stored codes:
   ``q >= code_cutoff(threshold)``, the same decision). A raw segment is a maximal run of consecutive,
   *present* bases that are all weak and contain at least one strong base: it enters
   above ``high`` and extends in both directions while ``p >= low``. A base without a
   prediction (no row in the dataset, e.g. an N run) breaks a run.
2. **Gap merging.** Two consecutive segments of the same feature separated by at most
   ``merge_gap`` bases are merged, provided every base of the gap has a prediction (no
   merging across missing bases).
3. **Minimum length.** Merged segments shorter than ``min_length`` bp are dropped.

State (per feature: the open run, the last merged segment) is carried across batches, so
the result does not depend on the batch size nor on how the genome was split into tasks:
a segment crossing a batch or task boundary is one segment. :class:`SegmentStream` does
all features of a batch at once with numpy (no Python loop per base, run or segment);
batches (:mod:`genoseg.frames`) may pack many small contigs. Final segments are appended
to per-feature segment files as they close, and the BED/GFF3 text is built from those
in blocks with Arrow compute (:mod:`genoseg.textout`), so memory is bounded whatever the
input (noise included). Features are split between ``threads`` worker processes; the
files are byte-identical whatever their number.

Output (``calls_dir``):

- ``<feature>.bed.gz`` + ``.tbi``: bgzipped, tabix-indexed BED6 (chrom, start, end,
  name = feature, score = round(mean probability over the called bases × 1000), exact
  from the integer codes, ties to even; strand ``.``), sorted by contig (dataset order)
  then start; no header line (BED tools skip lines starting with ``#``, ``track`` or
  ``browser``: genoseg's readers read every line as data). File names use
  :func:`genoseg.outputs.escape_name`.
- ``calls.gff3``: all features, GFF3 (``##gff-version 3``, ``##sequence-region``),
  type = feature name, score = mean probability (3 decimals, the BED score / 1000), IDs
  ``<feature>_<n>`` numbered per feature in (contig, start) order, lines sorted by contig
  then start (ties in feature order), seqid and attributes percent-escaped per the GFF3
  specification; ``##sequence-region`` lengths from ``chrom_sizes`` (checked against the
  predictions) or the last predicted base.
- ``summary.json``: parameters used, per-feature counts and called bp, predicted bases
  per contig.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from typing import Iterable, Mapping, Optional, Sequence, Union

import numpy as np
import pyarrow as pa

from . import frames, store, textout
from .errors import GenosegError
from .outputs import atomic_path, escape_name
from .parallel import check_threads, processes_for, run_jobs, split_round_robin

log = logging.getLogger(__name__)

_EPS = 1e-6


@dataclasses.dataclass(frozen=True)
class CallParams:
    """Calling parameters for one feature.

    high: enter a segment where ``p >= high``.
    low: stay in it while ``p >= low`` (``0 <= low <= high <= 1``).
    min_length: drop segments shorter than this many bp (after merging), >= 1.
    merge_gap: merge segments separated by at most this many bp, >= 0.
    """

    high: float = 0.5
    low: float = 0.3
    min_length: int = 1
    merge_gap: int = 0

    def validate(self, feature: str) -> "CallParams":
        if not (0.0 <= self.low <= self.high <= 1.0):
            raise GenosegError(
                f"threshold for {feature!r}: need 0 <= LOW <= HIGH <= 1, got HIGH={self.high} LOW={self.low}")
        if int(self.min_length) != self.min_length or self.min_length < 1:
            raise GenosegError(f"min-length for {feature!r} must be an integer >= 1, got {self.min_length}")
        if int(self.merge_gap) != self.merge_gap or self.merge_gap < 0:
            raise GenosegError(f"merge-gap for {feature!r} must be an integer >= 0, got {self.merge_gap}")
        return self


#: Fallback for features the table below does not name.
GENERIC_PARAMS = CallParams(high=0.5, low=0.3, min_length=1, merge_gap=0)

#: Documented defaults per feature (SegmentNT / SegmentEnformer / SegmentBorzoi names).
#: Thresholds: enter at 0.5 (the models' decision boundary), stay above 0.3. Point-like
#: elements (splice sites are a few bp, polyA signals 6 bp) have no body for hysteresis
#: to bridge, and a low exit threshold only widens them: they use a plain 0.5 cut (on
#: the demo genome this raised their precision by 0.07-0.08 at a recall cost of 0.03-0.07), a short
#: minimum length and no merging; genes and introns are long, so gaps of a few hundred bp inside them
#: (low-confidence stretches) are merged and fragments below 200 bp dropped.
DEFAULT_PARAMS: dict[str, CallParams] = {
    "protein_coding_gene": CallParams(0.5, 0.3, min_length=200, merge_gap=500),
    "lncRNA": CallParams(0.5, 0.3, min_length=200, merge_gap=500),
    "exon": CallParams(0.5, 0.3, min_length=20, merge_gap=10),
    "intron": CallParams(0.5, 0.3, min_length=50, merge_gap=200),
    "splice_donor": CallParams(0.5, 0.5, min_length=1, merge_gap=0),
    "splice_acceptor": CallParams(0.5, 0.5, min_length=1, merge_gap=0),
    "5UTR": CallParams(0.5, 0.3, min_length=10, merge_gap=10),
    "3UTR": CallParams(0.5, 0.3, min_length=10, merge_gap=20),
    "CTCF-bound": CallParams(0.5, 0.3, min_length=20, merge_gap=20),
    "polyA_signal": CallParams(0.5, 0.5, min_length=3, merge_gap=0),
    "enhancer_Tissue_specific": CallParams(0.5, 0.3, min_length=50, merge_gap=50),
    "enhancer_Tissue_invariant": CallParams(0.5, 0.3, min_length=50, merge_gap=50),
    "promoter_Tissue_specific": CallParams(0.5, 0.3, min_length=50, merge_gap=50),
    "promoter_Tissue_invariant": CallParams(0.5, 0.3, min_length=50, merge_gap=50),
}

#: Key in ``params`` / ``--threshold`` etc. that applies to every feature.
ALL = "all"


def default_params(feature: str) -> CallParams:
    """The documented default :class:`CallParams` for ``feature``."""
    return DEFAULT_PARAMS.get(feature, GENERIC_PARAMS)


ParamsLike = Union[CallParams, Mapping[str, object]]


def resolve_params(features: Sequence[str], params: Optional[Mapping[str, ParamsLike]] = None
                   ) -> dict[str, CallParams]:
    """Merge user overrides into the defaults, for ``features`` (model order).

    ``params`` maps a feature name (or ``"all"``) to a :class:`CallParams` or a dict with
    any of ``high``, ``low``, ``min_length``, ``merge_gap``. Per-feature entries win over
    ``"all"``. An unknown feature name or key raises :class:`GenosegError`.
    """
    params = dict(params or {})
    unknown = [k for k in params if k != ALL and k not in features]
    if unknown:
        raise GenosegError(f"unknown feature(s) {', '.join(map(repr, unknown))}; "
                           f"the model predicts: {', '.join(features)}")
    fields = {f.name for f in dataclasses.fields(CallParams)}

    def as_dict(v: ParamsLike, name: str) -> dict:
        d = dataclasses.asdict(v) if isinstance(v, CallParams) else dict(v)
        bad = set(d) - fields
        if bad:
            raise GenosegError(f"unknown call parameter(s) {sorted(bad)} for {name!r}; use {sorted(fields)}")
        return d

    out = {}
    for f in features:
        d = dataclasses.asdict(default_params(f))
        if ALL in params:
            d.update(as_dict(params[ALL], ALL))
        if f in params:
            d.update(as_dict(params[f], f))
        p = CallParams(high=float(d["high"]), low=float(d["low"]),
                       min_length=int(d["min_length"]), merge_gap=int(d["merge_gap"]))
        out[f] = p.validate(f)
    return out


# --------------------------------------------------------------------------------------
# Streaming segmenter
# --------------------------------------------------------------------------------------

#: Columns of a set of segments (struct of arrays, see :class:`SegmentStream`).
_SEG_FIELDS = ("f", "cid", "start", "end", "vsum", "vmax", "n", "blk")


def _seg_empty(vdtype, sdtype) -> dict:
    i8 = np.zeros(0, np.int64)
    return {"f": i8, "cid": np.zeros(0, np.int32), "start": i8, "end": i8, "vsum": np.zeros(0, sdtype),
            "vmax": np.zeros(0, vdtype), "n": i8, "blk": i8}


def _seg_cat(parts: Sequence[dict]) -> dict:
    return {k: np.concatenate([p[k] for p in parts]) for k in _SEG_FIELDS}


def _seg_take(s: dict, idx) -> dict:
    return {k: s[k][idx] for k in _SEG_FIELDS}


def code_cutoff(threshold: float) -> int:
    """Smallest stored code ``q`` whose probability ``q / 255`` meets ``p >= threshold``
    (with the 1e-6 tolerance, compared in float32 exactly as on decoded values)."""
    grid = store.dequantize(np.arange(256, dtype=np.uint8))
    return int(np.searchsorted(grid, np.float32(threshold - _EPS), side="left"))


class SegmentStream:
    """Streaming hysteresis + gap merging + minimum length for several features at once.

    Feed consecutive rows with :meth:`feed` (dataset order: contig by contig, positions
    increasing within a contig), then call :meth:`finish`. Both return the segments that
    became final, as a dict of arrays (``f`` feature index, ``cid`` contig index,
    ``start``/``end`` 0-based half-open, ``vsum`` sum and ``vmax`` maximum of the values
    over the called bases, ``n`` called bases), sorted by feature, then in stream order.

    Values are either stored codes (``uint8``, thresholds compared on codes: ``codes=True``)
    or float probabilities. All work per call is vectorised over the rows and features of
    the batch; the only state carried between calls is, per feature, the open run at the
    batch end and the last merged segment (which may still absorb the next one), so memory
    does not depend on the input and the result does not depend on how rows are batched.
    """

    def __init__(self, params: Sequence[CallParams], codes: bool = True):
        F = len(params)
        self.F = F
        self.codes = codes
        if codes:
            self.vdtype, self.sdtype = np.dtype(np.uint8), np.dtype(np.int64)
            self.lo = np.array([code_cutoff(p.low) for p in params], np.uint8)
            self.hi = np.array([code_cutoff(p.high) for p in params], np.uint8)
        else:
            self.vdtype, self.sdtype = np.dtype(np.float32), np.dtype(np.float64)
            self.lo = np.array([p.low - _EPS for p in params], np.float32)
            self.hi = np.array([p.high - _EPS for p in params], np.float32)
        self.gap = np.array([p.merge_gap for p in params], np.int64)
        self.min_length = np.array([p.min_length for p in params], np.int64)
        self.open = _seg_empty(self.vdtype, self.sdtype)   # at most one open run per feature
        self.pend = _seg_empty(self.vdtype, self.sdtype)   # at most one pending segment per feature
        self.block = 0          # id of the current run of present, contiguous bases
        self.last_pos = -2
        self.last_cid = -1

    # ---------------------------------------------------------------- runs of a batch
    def _blocks(self, pos: np.ndarray, cid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New-block flags (a base is missing before the row, or the contig changes) and
        block ids of the rows."""
        newblock = np.empty(pos.size, bool)
        newblock[0] = pos[0] != self.last_pos + 1 or cid[0] != self.last_cid
        np.not_equal(pos[1:], pos[:-1] + 1, out=newblock[1:])
        newblock[1:] |= cid[1:] != cid[:-1]
        blocks = self.block + np.cumsum(newblock)
        self.block = int(blocks[-1])
        self.last_pos, self.last_cid = int(pos[-1]), int(cid[-1])
        return newblock, blocks

    def _runs(self, vals: np.ndarray, newblock: np.ndarray):
        """Maximal runs of weak values per feature, split at block starts. Returns the
        padded values (flat), run starts/ends as flat indices and the row width."""
        F, n = vals.shape
        w1 = n + 1  # one padding column per feature row: runs never cross rows
        padded = np.zeros((F, w1), vals.dtype)
        padded[:, :n] = vals
        weak = np.zeros((F, w1), bool)
        np.greater_equal(padded[:, :n], self.lo[:, None], out=weak[:, :n])
        flat = weak.ravel()
        edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        if flat[0]:
            edges = np.concatenate(([0], edges))
        rs, re = edges[0::2], edges[1::2]
        brk = np.flatnonzero(newblock[1:]) + 1
        if brk.size:  # a run crossing a block start is two runs
            ff, bb = np.nonzero(weak[:, brk - 1] & weak[:, brk])
            cut = ff * w1 + brk[bb]
            rs = np.insert(rs, np.searchsorted(rs, cut), cut)
            re = np.insert(re, np.searchsorted(re, cut), cut)
        return padded.ravel(), np.ascontiguousarray(rs), np.ascontiguousarray(re), w1

    def feed(self, pos: np.ndarray, vals: np.ndarray, cid: np.ndarray) -> dict:
        """Process rows: ``pos`` int64 ``[n]``, ``vals`` ``[F, n]`` (codes or floats),
        ``cid`` int32 ``[n]`` contig index of each row. Returns the segments made final."""
        n = int(pos.size)
        if n == 0:
            return _seg_empty(self.vdtype, self.sdtype)
        vals = np.asarray(vals, self.vdtype)
        newblock, blocks = self._blocks(pos, cid)
        flat, rs, re, w1 = self._runs(vals, newblock)
        counts = np.diff(np.searchsorted(rs, np.arange(self.F + 1) * w1))
        f = np.repeat(np.arange(self.F), counts)
        idx = np.empty(2 * rs.size, np.int64)
        idx[0::2], idx[1::2] = rs, re
        vmax = np.maximum.reduceat(flat, idx)[0::2] if rs.size else np.zeros(0, self.vdtype)
        # only runs with a strong base, the runs left open at the end and those that may
        # continue the open run matter
        i0, i1 = rs - f * w1, re - f * w1
        need = np.flatnonzero((vmax >= self.hi[f]) | (i1 == n) | (i0 == 0))
        rs, re, f, i0, i1, vmax = rs[need], re[need], f[need], i0[need], i1[need], vmax[need]
        idx = np.empty(2 * rs.size, np.int64)
        idx[0::2], idx[1::2] = rs, re
        runs = {"f": f, "cid": cid[i0].astype(np.int32), "start": pos[i0], "end": pos[i1 - 1] + 1,
                "vmax": vmax, "n": i1 - i0, "blk": blocks[i0],
                "vsum": np.add.reduceat(flat, idx, dtype=self.sdtype)[0::2] if rs.size else np.zeros(0, self.sdtype)}
        at_end = i1 == n
        # the open run of a feature continues into this batch's first run
        opened = self.open
        closed_open = np.ones(opened["f"].size, bool)
        if not newblock[0] and opened["f"].size:
            first = np.flatnonzero(i0 == 0)
            where = np.searchsorted(opened["f"], f[first])
            ok = (where < opened["f"].size)
            ok[ok] = opened["f"][where[ok]] == f[first[ok]]
            first, where = first[ok], where[ok]
            runs["start"][first] = opened["start"][where]
            runs["vsum"][first] += opened["vsum"][where]
            runs["vmax"][first] = np.maximum(runs["vmax"][first], opened["vmax"][where])
            runs["n"][first] += opened["n"][where]
            closed_open[where] = False
        self.open = _seg_take(runs, np.flatnonzero(at_end))
        done = _seg_cat([_seg_take(opened, np.flatnonzero(closed_open)), _seg_take(runs, np.flatnonzero(~at_end))])
        return self._merge(done, final=False)

    def finish(self) -> dict:
        """Close the open runs and pending segments (end of the stream)."""
        done, self.open = self.open, _seg_empty(self.vdtype, self.sdtype)
        return self._merge(done, final=True)

    # ------------------------------------------------------- raw segments -> merged
    def _merge(self, closed: dict, final: bool) -> dict:
        """Closed runs (sorted by feature, then stream order) -> raw segments (runs with a
        strong base) -> merged with the pending segment of their feature and each other
        -> final segments (all but the last group of each feature, unless ``final``)
        filtered by minimum length."""
        raw = _seg_take(closed, np.flatnonzero(closed["vmax"] >= self.hi[closed["f"]]))
        seg = _seg_cat([self.pend, raw])
        if seg["f"].size == 0:
            return seg
        seg = _seg_take(seg, np.argsort(seg["f"], kind="stable"))
        f, start, end = seg["f"], seg["start"], seg["end"]
        first = np.ones(f.size, bool)
        first[1:] = (f[1:] != f[:-1]) | (seg["blk"][1:] != seg["blk"][:-1]) | (start[1:] - end[:-1] > self.gap[f[1:]])
        gi = np.flatnonzero(first)
        last_member = np.append(gi[1:], f.size) - 1
        groups = {"f": f[gi], "cid": seg["cid"][gi], "start": start[gi], "end": end[last_member],
                  "vsum": np.add.reduceat(seg["vsum"], gi), "vmax": np.maximum.reduceat(seg["vmax"], gi),
                  "n": np.add.reduceat(seg["n"], gi), "blk": seg["blk"][gi]}
        if final:
            keep = np.ones(gi.size, bool)
            self.pend = _seg_empty(self.vdtype, self.sdtype)
        else:
            keep = np.ones(gi.size, bool)
            keep[:-1] = groups["f"][1:] == groups["f"][:-1]  # the last group of a feature waits
            keep[-1] = False
            self.pend = _seg_take(groups, np.flatnonzero(~keep))
        keep &= (groups["end"] - groups["start"]) >= self.min_length[groups["f"]]
        return _seg_take(groups, np.flatnonzero(keep))


def call_array(pos: np.ndarray, prob: np.ndarray, params: CallParams, batch_rows: Optional[int] = None):
    """Call one feature on one contig held in memory (float probabilities; testing/helper).

    Returns ``(start, end, mean_p, max_p)`` arrays; coordinates 0-based half-open.
    """
    pos = np.asarray(pos, np.int64)
    prob = np.asarray(prob, np.float32)
    s = SegmentStream([params], codes=False)
    step = batch_rows or max(len(pos), 1)
    parts = [s.feed(pos[i:i + step], prob[None, i:i + step], np.zeros(min(step, len(pos) - i), np.int32))
             for i in range(0, len(pos), step)]
    out = _seg_cat(parts + [s.finish()]) if parts else s.finish()
    return out["start"], out["end"], out["vsum"] / np.maximum(out["n"], 1), out["vmax"].astype(np.float64)


# --------------------------------------------------------------------------------------
# Dataset → files
# --------------------------------------------------------------------------------------

_GFF_SEQID_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:^*$@!+_?-|")


def gff_escape_seqid(name: str) -> str:
    """Escape a GFF3 column-1 seqid: only ``[a-zA-Z0-9.:^*$@!+_?-|]`` stay literal."""
    return "".join(c if c in _GFF_SEQID_OK else "".join(f"%{b:02X}" for b in c.encode()) for c in name)


def gff_escape(text: str) -> str:
    """Escape a GFF3 column (type, source, attribute value): ``% ; = & ,``, tab, newline,
    CR and control characters become ``%XX`` (GFF3 specification)."""
    out = []
    for c in text:
        if c in "%;=&," or ord(c) < 0x20 or ord(c) == 0x7F:
            out.append("".join(f"%{b:02X}" for b in c.encode()))
        else:
            out.append(c)
    return "".join(out)


def _check_contig_name(name: str) -> None:
    if any(c in name for c in "\t\n\r"):
        raise GenosegError(f"contig name {name!r} contains a tab or newline; it cannot be written to BED")


def _features_subset(all_features: Sequence[str], features: Optional[Iterable[str]]) -> list[str]:
    if not features:
        return list(all_features)
    features = list(features)
    bad = [f for f in features if f not in all_features]
    if bad:
        raise GenosegError(f"unknown feature(s) {', '.join(map(repr, bad))}; "
                           f"the model predicts: {', '.join(all_features)}")
    return features


def open_dataset(dataset_dir: str) -> dict:
    """Check ``dataset_dir`` is a prediction dataset; return its metadata (GenosegError if not)."""
    if not os.path.isdir(dataset_dir):
        raise GenosegError(f"predictions directory {dataset_dir} does not exist")
    try:
        meta = store.read_metadata(dataset_dir)
    except GenosegError:
        raise
    except Exception as exc:  # pyarrow errors, missing files, bad JSON
        raise GenosegError(f"{dataset_dir} is not a genoseg prediction dataset: {exc}") from exc
    if not meta or not meta.get("features"):
        raise GenosegError(f"{dataset_dir}: no genoseg metadata (features) found")
    return meta


def call_dataset(dataset_dir: str, calls_dir: str, params: Optional[Mapping[str, ParamsLike]] = None,
                 overwrite: bool = False, *, features: Optional[Sequence[str]] = None,
                 chrom_sizes: Union[Mapping[str, int], str, None] = None, batch_rows: Optional[int] = None,
                 threads: Optional[int] = 1) -> dict:
    """Call intervals for every feature of a prediction dataset; write BED/GFF3 to ``calls_dir``.

    Args:
        dataset_dir: ``OUTDIR/<backbone>/predictions`` (Parquet, see :mod:`genoseg.store`).
        calls_dir: output directory (created atomically: it appears only when complete).
        params: overrides per feature, see :func:`resolve_params` (``None``: defaults).
        overwrite: replace an existing ``calls_dir``; otherwise GenosegError if it exists.
        features: subset of features to call (default: all, in model order).
        chrom_sizes: contig lengths (bp) for ``##sequence-region``, or a ``.fai`` path;
            every contig of the predictions must be in it and no longer than it says
            (checked before any work). Default: last predicted position + 1.
        batch_rows: rows per streamed frame (results do not depend on it).
        threads: worker processes (features are split between them; the output is
            byte-identical whatever the number); ``None``: the task's cores.

    Returns:
        summary dict: ``backbone``, ``features`` (name → ``count``, ``bp``, ``params``,
        ``bed``), ``contigs`` (name → predicted bases), ``bases``, ``seconds``.
    """
    t0 = time.time()
    meta = open_dataset(dataset_dir)
    all_features = list(meta["features"])
    feats = _features_subset(all_features, features)
    resolved = resolve_params(all_features, params)
    threads = check_threads(threads)
    contigs = list(store.list_contigs(dataset_dir))
    for c in contigs:
        _check_contig_name(c)
    names = {f: escape_name(f) + ".bed.gz" for f in feats}
    if len(set(n.lower() for n in names.values())) != len(names):
        raise GenosegError("feature names collide once escaped for file names")
    if isinstance(chrom_sizes, (str, os.PathLike)):
        from .tracks import read_fai

        source, chrom_sizes = os.fspath(chrom_sizes), read_fai(os.fspath(chrom_sizes))
    else:
        source = "the chromosome sizes given"
    if chrom_sizes is not None:
        frames.check_sizes(dataset_dir, contigs, chrom_sizes, source)

    summary = {"backbone": meta.get("backbone"), "dataset": os.path.abspath(dataset_dir),
               "features": {f: {"count": 0, "bp": 0, "params": dataclasses.asdict(resolved[f]),
                                "bed": names[f]} for f in feats},
               "contigs": {}, "bases": 0}
    with atomic_path(calls_dir, overwrite=overwrite, is_dir=True) as tmp:
        segs = [os.path.join(tmp, "." + names[f][:-len(".bed.gz")] + ".seg") for f in feats]
        groups = split_round_robin(len(feats), processes_for(threads, _rows(meta, contigs)))
        jobs = [(dataset_dir, contigs, [feats[i] for i in g], [resolved[feats[i]] for i in g],
                 [segs[i] for i in g], [os.path.join(tmp, names[feats[i]]) for i in g], batch_rows)
                for g in groups]
        parts = run_jobs(_call_features, jobs, len(jobs))
        for part in parts:
            for f, st in part["features"].items():
                summary["features"][f].update(st)
        bases, ends = parts[0]["bases"], parts[0]["ends"]
        summary["contigs"] = dict(zip(contigs, bases))
        summary["bases"] = int(sum(bases))
        sizes = [int(chrom_sizes[c]) if chrom_sizes is not None else e for c, e in zip(contigs, ends)]
        _write_gff3(os.path.join(tmp, "calls.gff3"), segs, feats, contigs, sizes,
                    gff_escape(f"genoseg:{meta.get('backbone') or 'model'}"))
        for p in segs:
            os.remove(p)
        summary["seconds"] = round(time.time() - t0, 3)
        with open(os.path.join(tmp, "summary.json"), "w") as fh:
            json.dump(summary, fh, indent=1)
    log.info("called %d features on %d contigs (%d bases) in %.1f s: %s", len(feats), len(contigs),
             summary["bases"], summary["seconds"],
             ", ".join(f"{f}={v['count']}" for f, v in summary["features"].items()))
    return summary


def _rows(meta: dict, contigs: Sequence[str]) -> int:
    rows = meta.get("rows") or {}
    return sum(int(rows.get(c, 0)) for c in contigs)


def _call_features(dataset_dir: str, contigs: Sequence[str], feats: Sequence[str], params: Sequence[CallParams],
                   seg_paths: Sequence[str], bed_paths: Sequence[str], batch_rows: Optional[int]) -> dict:
    """One worker: stream the dataset once for ``feats``, append final segments to
    their segment files, then write each feature's BED. Returns per-feature counts and
    bp, and per-contig predicted bases and last position + 1."""
    stream = SegmentStream(params, codes=True)
    bases = np.zeros(len(contigs), np.int64)
    ends = np.zeros(len(contigs), np.int64)
    for p in seg_paths:
        open(p, "wb").close()
    for fr in frames.iter_frames(dataset_dir, contigs, feats, batch_rows):
        cid = fr.row_cid()
        same = cid[1:] == cid[:-1]
        if np.any(same & (fr.pos[1:] <= fr.pos[:-1])) or (cid[0] == stream.last_cid and fr.pos[0] <= stream.last_pos):
            bad = contigs[int(cid[0])]
            raise GenosegError(f"{dataset_dir}: positions on {bad!r} are not increasing")
        np.add.at(bases, fr.piece_cid, fr.piece_len)
        ends[fr.piece_cid] = fr.pos[np.cumsum(fr.piece_len) - 1] + 1
        _spill(stream.feed(fr.pos, fr.codes, cid), seg_paths)
    _spill(stream.finish(), seg_paths)
    names = pa.array(list(contigs), pa.string())
    out = {"features": {}, "bases": bases.tolist(), "ends": ends.tolist()}
    for f, seg, bed in zip(feats, seg_paths, bed_paths):
        textout.write_bed_gz(seg, bed, names, f)
        bp = sum(int((r["end"] - r["start"]).sum()) for r in textout.segment_blocks(seg))
        out["features"][f] = {"count": textout.segment_count(seg), "bp": bp}
    return out


def _spill(seg: dict, seg_paths: Sequence[str]) -> None:
    """Append final segments (sorted by feature) to their features' segment files."""
    if seg["f"].size == 0:
        return
    cuts = np.searchsorted(seg["f"], np.arange(len(seg_paths) + 1))
    for k, path in enumerate(seg_paths):
        a, b = cuts[k], cuts[k + 1]
        if b > a:
            rec = np.empty(b - a, textout.SEG_DTYPE)
            for name in textout.SEG_DTYPE.names:
                rec[name] = seg["vsum" if name == "qsum" else "vmax" if name == "qmax" else name][a:b]
            textout.append_segments(path, rec)


def _write_gff3(path: str, seg_paths: Sequence[str], feats: Sequence[str], contigs: Sequence[str],
                sizes: Sequence[int], source: str) -> None:
    """All features in one GFF3, by contig (dataset order) then start (ties in feature
    order); IDs ``<feature>_<n>`` numbered per feature in (contig, start) order."""
    seqids = [gff_escape_seqid(c) for c in contigs]
    with open(path, "wb") as out:
        out.write(b"##gff-version 3\n")
        out.write("".join(f"##sequence-region {q} 1 {n}\n" for q, n in zip(seqids, sizes) if n > 0).encode())
        types = pa.array([gff_escape(f) for f in feats], pa.string())
        seqids_arr = pa.array(seqids, pa.string())
        for rec, f, ids in textout.merged_order(seg_paths):
            out.write(textout.gff_lines(rec, f, ids, seqids_arr, source, types))


def read_summary(calls_dir: str) -> Optional[dict]:
    """``summary.json`` written by :func:`call_dataset`, or None."""
    p = os.path.join(calls_dir, "summary.json")
    if not os.path.exists(p):
        return None
    with open(p) as fh:
        return json.load(fh)


def read_bed(path: str):
    """Read a (bgzipped) calls BED: returns ``(chrom list, start, end, score)`` arrays.

    Vectorised; every line is data (a contig may be named ``#1`` or ``track_7``), see
    :func:`genoseg.textout.read_bed_table`. Memory: the whole file; streaming readers use
    :func:`genoseg.textout.iter_bed`.
    """
    t = textout.read_bed_table(path, ("chrom", "start", "end", "score"))
    return (t["chrom"].to_pylist(), t["start"].to_numpy(), t["end"].to_numpy(), t["score"].to_numpy())
