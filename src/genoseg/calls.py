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
in blocks with numpy (:mod:`genoseg.textout`), so memory is bounded whatever the
input (noise included). Features are split between ``threads`` worker processes; the
files are byte-identical whatever their number.

Output (``calls_dir``):

- ``<feature>.bed.gz`` + ``.tbi`` (``.csi`` when a segment ends past 2^29, 512 Mb):
  bgzipped, tabix-indexed BED6 (chrom, start, end,
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

#: Columns of a set of segments (struct of arrays, see :class:`SegmentStream`); ``f``
#: (feature index) only where segments of several features are put together.
_SEG_FIELDS = ("cid", "start", "end", "vsum", "vmax", "n", "blk")


def _seg_empty(vdtype, sdtype) -> dict:
    i8 = np.zeros(0, np.int64)
    return {"cid": np.zeros(0, np.int32), "start": i8, "end": i8, "vsum": np.zeros(0, sdtype),
            "vmax": np.zeros(0, vdtype), "n": i8, "blk": i8}


def _seg_cat(parts: Sequence[dict]) -> dict:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _seg_take(s: dict, idx) -> dict:
    return {k: v[idx] for k, v in s.items()}


def _seg_one(seg: dict, like: dict) -> dict:
    """One segment given as scalars, as arrays of the dtypes of ``like``."""
    return {k: np.array([seg[k]], like[k].dtype) for k in _SEG_FIELDS}


def code_cutoff(threshold: float) -> int:
    """Smallest stored code ``q`` whose probability ``q / 255`` meets ``p >= threshold``
    (with the 1e-6 tolerance, compared in float32 exactly as on decoded values)."""
    grid = store.dequantize(np.arange(256, dtype=np.uint8))
    return int(np.searchsorted(grid, np.float32(threshold - _EPS), side="left"))


def _run_edges(weak: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """Starts and ends (alternating; rows, ends exclusive) of the runs of ``weak``,
    runs cut before the rows ``cut`` (block starts)."""
    n = weak.size
    w = weak.view(np.int8)
    t = np.flatnonzero(w[1:] != w[:-1]) + 1
    if weak[0]:
        t = np.concatenate(([0], t))
    if weak[-1]:
        t = np.append(t, n)
    if cut.size:
        c = cut[weak[cut - 1] & weak[cut]]
        if c.size:  # a run across a block start is two runs
            t = np.insert(t, np.repeat(np.searchsorted(t, c), 2), np.repeat(c, 2))
    return t


class SegmentStream:
    """Streaming hysteresis + gap merging + minimum length for several features at once.

    Feed consecutive rows with :meth:`feed` (dataset order: contig by contig, positions
    increasing within a contig), then call :meth:`finish`. Both return the segments that
    became final, as a dict of arrays (``f`` feature index, ``cid`` contig index,
    ``start``/``end`` 0-based half-open, ``vsum`` sum and ``vmax`` maximum of the values
    over the called bases, ``n`` called bases), sorted by feature, then in stream order;
    :meth:`feed_features` / :meth:`finish_features` give one such dict per feature
    (without ``f``).

    Values are either stored codes (``uint8``, thresholds compared on codes: ``codes=True``)
    or float probabilities. The work per call is vectorised over the rows of the batch,
    feature by feature (a handful of passes over the rows, then work per run); the only
    state carried between calls is, per feature, the open run at the batch end and the
    last merged segment (which may still absorb the next one), so memory does not depend
    on the input and the result does not depend on how rows are batched.
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
        self.gap = [int(p.merge_gap) for p in params]
        self.min_length = [int(p.min_length) for p in params]
        self.open: list[Optional[dict]] = [None] * F  # per feature: the run reaching the batch end
        self.pend: list[Optional[dict]] = [None] * F  # per feature: the last merged segment
        self.block = 0          # id of the current run of present, contiguous bases
        self.last_pos = -2
        self.last_cid = -1

    def _empty(self) -> dict:
        return _seg_empty(self.vdtype, self.sdtype)

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

    @staticmethod
    def _tag(per_feature: list[dict]) -> dict:
        return _seg_cat([dict(s, f=np.full(s["start"].size, k, np.int64)) for k, s in enumerate(per_feature)])

    def feed(self, pos: np.ndarray, vals: np.ndarray, cid: np.ndarray) -> dict:
        """Process rows: ``pos`` int64 ``[n]``, ``vals`` ``[F, n]`` (codes or floats),
        ``cid`` int32 ``[n]`` contig index of each row. Returns the segments made final."""
        return self._tag(self.feed_features(pos, vals, cid))

    def finish(self) -> dict:
        """Close the open runs and pending segments (end of the stream)."""
        return self._tag(self.finish_features())

    def feed_features(self, pos: np.ndarray, vals: np.ndarray, cid: np.ndarray) -> list[dict]:
        """:meth:`feed`, one dict of final segments per feature."""
        if pos.size == 0:
            return [self._empty() for _ in range(self.F)]
        vals = np.asarray(vals, self.vdtype)
        fresh = self.last_pos + 1 != pos[0] or self.last_cid != cid[0]
        _, blocks = self._blocks(pos, cid)
        cut = np.flatnonzero(blocks[1:] != blocks[:-1]) + 1
        return [self._feed_one(k, pos, vals[k], cid, blocks, cut, bool(fresh)) for k in range(self.F)]

    def finish_features(self) -> list[dict]:
        """:meth:`finish`, one dict per feature."""
        out = []
        for k in range(self.F):
            raw, o = self._empty(), self.open[k]
            self.open[k] = None
            if o is not None and o["vmax"] >= self.hi[k]:
                raw = _seg_one(o, raw)
            out.append(self._merge(k, raw, final=True))
        return out

    def _feed_one(self, k: int, pos, v, cid, blocks, cut, fresh: bool) -> dict:
        """One feature's rows: runs of weak values (continuing the open run), those with
        a strong base, merged -> the segments made final."""
        n = pos.size
        t = _run_edges(v >= self.lo[k], cut)
        rs, re = t[0::2], t[1::2]
        R = rs.size
        vsum, vmax = self._run_stats(v, rs, re)
        o, self.open[k] = self.open[k], None
        join = o is not None and not fresh and R > 0 and rs[0] == 0  # the open run goes on
        if join:
            vmax[0], vsum[0] = max(vmax[0], o["vmax"]), vsum[0] + o["vsum"]
        if R and re[-1] == n:  # the last run may go on in the next batch
            R -= 1
            first = join and R == 0
            self.open[k] = {"cid": int(cid[rs[R]]), "start": o["start"] if first else int(pos[rs[R]]),
                            "vsum": vsum[R], "vmax": vmax[R], "n": int(re[R] - rs[R]) + (o["n"] if first else 0),
                            "blk": int(blocks[rs[R]])}
            self.open[k]["end"] = self.open[k]["start"] + self.open[k]["n"]
        keep = np.flatnonzero(vmax[:R] >= self.hi[k])
        r0, r1 = rs[keep], re[keep]
        raw = {"cid": cid[r0].astype(np.int32), "start": pos[r0], "end": pos[r1 - 1] + 1, "vsum": vsum[keep],
               "vmax": vmax[keep], "n": r1 - r0, "blk": blocks[r0]}
        if join and keep.size and keep[0] == 0:
            raw["start"][0] = o["start"]
            raw["n"][0] += o["n"]
        if o is not None and not join and o["vmax"] >= self.hi[k]:  # the open run ended with the last batch
            raw = _seg_cat([_seg_one(o, raw), raw])
        return self._merge(k, raw, final=False)

    def _run_stats(self, v: np.ndarray, rs: np.ndarray, re: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sum and maximum of ``v`` over the runs ``[rs, re)`` (sorted, disjoint)."""
        if rs.size == 0:
            return np.zeros(0, self.sdtype), np.zeros(0, self.vdtype)
        n = v.size
        if not self.codes or rs.size * 32 < n:  # few runs: reduceat, one light pass
            idx = np.stack([rs, re], 1).ravel()
            idx = idx[:-1] if idx[-1] == n else idx  # reduceat indices must be < n
            return np.add.reduceat(v, idx, dtype=self.sdtype)[0::2], np.maximum.reduceat(v, idx)[0::2]
        # many short runs of codes: prefix sums, and a running maximum that restarts at
        # each run (every run's codes lifted by 256 x its number); ~5x faster than
        # reduceat over short runs, slower over few long ones
        small = n < 1 << 23
        cs = np.zeros(n + 1, np.int32 if small else np.int64)
        np.cumsum(v, out=cs[1:])
        run = np.zeros(n, np.int32 if small else np.int64)
        run[rs[1:]] = 1
        np.cumsum(run, out=run)
        run <<= 8
        run += v
        np.maximum.accumulate(run, out=run)
        last = re - 1
        vmax = (run[last] - (np.arange(rs.size, dtype=run.dtype) << 8)).astype(np.uint8)
        return (cs[re] - cs[rs]).astype(np.int64), vmax

    def _merge(self, k: int, raw: dict, final: bool) -> dict:
        """Raw segments (stream order) merged with the pending segment of the feature and
        with each other -> final segments (all but the last, unless ``final``) filtered
        by minimum length."""
        p = self.pend[k]
        seg = _seg_cat([_seg_one(p, raw), raw]) if p is not None else raw
        self.pend[k] = None
        if seg["start"].size == 0:
            return seg
        start, end, blk = seg["start"], seg["end"], seg["blk"]
        join = (blk[1:] == blk[:-1]) & (start[1:] - end[:-1] <= self.gap[k])
        if join.any():
            gi = np.flatnonzero(np.concatenate(([True], ~join)))
            last = np.append(gi[1:], start.size) - 1
            seg = {"cid": seg["cid"][gi], "start": start[gi], "end": end[last], "vsum": np.add.reduceat(seg["vsum"], gi),
                   "vmax": np.maximum.reduceat(seg["vmax"], gi), "n": np.add.reduceat(seg["n"], gi), "blk": blk[gi]}
        if not final:  # the last one may absorb the next raw segment
            self.pend[k] = {f: seg[f][-1] for f in _SEG_FIELDS}
            seg = _seg_take(seg, slice(None, -1))
        return _seg_take(seg, np.flatnonzero(seg["end"] - seg["start"] >= self.min_length[k]))


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
        _spill(stream.feed_features(fr.pos, fr.codes, cid), seg_paths)
    _spill(stream.finish_features(), seg_paths)
    names = textout.Table(contigs)
    out = {"features": {}, "bases": bases.tolist(), "ends": ends.tolist()}
    for f, seg, bed in zip(feats, seg_paths, bed_paths):
        textout.write_bed_gz(seg, bed, contigs, f, names)
        bp = sum(int((r["end"] - r["start"]).sum()) for r in textout.segment_blocks(seg))
        out["features"][f] = {"count": textout.segment_count(seg), "bp": bp}
    return out


def _spill(segs: Sequence[dict], seg_paths: Sequence[str]) -> None:
    """Append final segments (one dict per feature) to their features' segment files."""
    for seg, path in zip(segs, seg_paths):
        if seg["start"].size:
            rec = np.empty(seg["start"].size, textout.SEG_DTYPE)
            for name in textout.SEG_DTYPE.names:
                rec[name] = seg["vsum" if name == "qsum" else "vmax" if name == "qmax" else name]
            textout.append_segments(path, rec)


def _write_gff3(path: str, seg_paths: Sequence[str], feats: Sequence[str], contigs: Sequence[str],
                sizes: Sequence[int], source: str) -> None:
    """All features in one GFF3, by contig (dataset order) then start (ties in feature
    order); IDs ``<feature>_<n>`` numbered per feature in (contig, start) order."""
    seqids = [gff_escape_seqid(c) for c in contigs]
    with open(path, "wb") as out:
        out.write(b"##gff-version 3\n")
        out.write("".join(f"##sequence-region {q} 1 {n}\n" for q, n in zip(seqids, sizes) if n > 0).encode())
        types = textout.Table([gff_escape(f) for f in feats])
        seqid_table = textout.Table(seqids)
        for rec, f, ids in textout.merged_order(seg_paths):
            for text in textout.iter_lines(textout.gff_fields(rec, f, ids, seqid_table, source, types), rec.size):
                out.write(text)


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
