"""Calling: per-feature probabilities → intervals (BED + GFF3).

Coordinates: 0-based half-open ``[start, end)`` in memory and in BED; GFF3 is 1-based
closed (``start + 1 .. end``). Lengths and gaps are in bases (bp). Probabilities are
floats in ``[0, 1]`` (the store decodes ``uint8`` as ``q / 255``).

Algorithm, per feature and per contig, streaming batch by batch:

1. **Hysteresis.** A base is *strong* if ``p >= high`` and *weak* if ``p >= low``
   (``low <= high``; comparisons use a 1e-6 tolerance so a threshold on the 1/255 grid
   is met by the value equal to it). A raw segment is a maximal run of consecutive,
   *present* bases that are all weak and contain at least one strong base: it enters
   above ``high`` and extends in both directions while ``p >= low``. A base without a
   prediction (no row in the dataset, e.g. an N run) breaks a run.
2. **Gap merging.** Two consecutive segments of the same feature separated by at most
   ``merge_gap`` bases are merged, provided every base of the gap has a prediction (no
   merging across missing bases).
3. **Minimum length.** Merged segments shorter than ``min_length`` bp are dropped.

State (the open run, the last merged segment) is carried across batches, so the result
does not depend on the batch size nor on how the genome was split into tasks: a segment
crossing a batch or task boundary is one segment. Work per batch is vectorised numpy;
Python loops run per batch, per feature and per output segment only. Memory is one batch
of probabilities plus the segments of the current contig.

Output (``calls_dir``):

- ``<feature>.bed.gz`` + ``.tbi``: bgzipped, tabix-indexed BED6 (chrom, start, end,
  name = feature, score = round(mean probability over the called bases × 1000), strand
  ``.``), sorted by contig (dataset order) then start. File names use
  :func:`genoseg.outputs.escape_name`.
- ``calls.gff3``: all features, GFF3 (``##gff-version 3``, ``##sequence-region``),
  type = feature name, score = mean probability, IDs ``<feature>_<n>`` unique, seqid and
  attributes percent-escaped per the GFF3 specification.
- ``summary.json``: parameters used, per-feature counts and called bp, predicted bases
  per contig.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import os
import time
from typing import Iterable, Mapping, Optional, Sequence, Union

import numpy as np

from . import store
from .errors import GenosegError
from .outputs import atomic_path, escape_name

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

class _Segments:
    """Growable columns of finished segments for one feature and contig."""

    __slots__ = ("start", "end", "total", "peak", "n")

    def __init__(self) -> None:
        self.start: list[np.ndarray] = []
        self.end: list[np.ndarray] = []
        self.total: list[np.ndarray] = []   # sum of p over called bases
        self.peak: list[np.ndarray] = []    # max p
        self.n: list[np.ndarray] = []       # called (present) bases

    def add(self, start, end, total, peak, n) -> None:
        if len(start):
            self.start.append(np.asarray(start, np.int64))
            self.end.append(np.asarray(end, np.int64))
            self.total.append(np.asarray(total, np.float64))
            self.peak.append(np.asarray(peak, np.float64))
            self.n.append(np.asarray(n, np.int64))

    def arrays(self):
        if not self.start:
            e = np.zeros(0, np.int64)
            return e, e, np.zeros(0), np.zeros(0), e
        return tuple(np.concatenate(x) for x in (self.start, self.end, self.total, self.peak, self.n))


class FeatureCaller:
    """Streaming hysteresis + merge + min-length caller for one feature on one contig.

    Feed batches with :meth:`feed` (positions strictly increasing across calls, 0-based),
    then :meth:`finish`; finished segments accumulate in :attr:`out`.
    """

    def __init__(self, params: CallParams) -> None:
        self.p = params
        self.hi = params.high - _EPS
        self.lo = params.low - _EPS
        # open raw run: [start, next_pos) with stats; None when no run is open
        self.run: Optional[list] = None  # [start, end, strong, total, peak, n, block]
        # pending merged segment (may still absorb the next one)
        self.pend: Optional[list] = None  # [start, end, total, peak, n, block]
        self.block = 0          # id of the current run of present (contiguous) bases
        self.last_pos = None    # last position seen (for gap detection across batches)
        self.out = _Segments()

    # raw runs -> merge/min-length
    def _emit_raw(self, start, end, total, peak, n, block) -> None:
        """Take raw hysteresis segments (sorted), merge gaps, keep last one pending."""
        if self.pend is not None:
            s0, e0, t0, p0, n0, b0 = self.pend
            start = np.concatenate(([s0], start))
            end = np.concatenate(([e0], end))
            total = np.concatenate(([t0], total))
            peak = np.concatenate(([p0], peak))
            n = np.concatenate(([n0], n))
            block = np.concatenate(([b0], block))
        if len(start) == 0:
            return
        join = ((start[1:] - end[:-1]) <= self.p.merge_gap) & (block[1:] == block[:-1])
        first = np.concatenate(([True], ~join))
        idx = np.flatnonzero(first)
        gstart = start[idx]
        gend = np.maximum.reduceat(end, idx)
        gtot = np.add.reduceat(total, idx)
        gpeak = np.maximum.reduceat(peak, idx)
        gn = np.add.reduceat(n, idx)
        gblock = block[idx]
        # last group stays pending
        self.pend = [int(gstart[-1]), int(gend[-1]), float(gtot[-1]), float(gpeak[-1]), int(gn[-1]), int(gblock[-1])]
        self._keep(gstart[:-1], gend[:-1], gtot[:-1], gpeak[:-1], gn[:-1])

    def _keep(self, start, end, total, peak, n) -> None:
        ok = (end - start) >= self.p.min_length
        self.out.add(start[ok], end[ok], total[ok], peak[ok], n[ok])

    def feed(self, pos: np.ndarray, prob: np.ndarray) -> None:
        """Process one batch: ``pos`` int64 [n] increasing, ``prob`` float [n]."""
        n = len(pos)
        if n == 0:
            return
        # contiguity: a new block starts wherever a base is missing before this one
        newblock = np.empty(n, bool)
        newblock[1:] = np.diff(pos) != 1
        newblock[0] = self.last_pos is None or pos[0] != self.last_pos + 1
        blocks = self.block + np.cumsum(newblock)
        self.block = int(blocks[-1])
        self.last_pos = int(pos[-1])

        weak = prob >= self.lo
        strong = prob >= self.hi
        # run boundaries (runs of weak bases within one block)
        starts_m = weak.copy()
        starts_m[1:] &= ~weak[:-1] | newblock[1:]
        cont = self.run is not None and not newblock[0] and weak[0]
        if self.run is not None and not cont:
            self._close_run()
        rs = np.flatnonzero(starts_m)
        if len(rs) == 0:
            return
        ends_m = weak.copy()
        ends_m[:-1] &= ~weak[1:] | newblock[1:]
        re = np.flatnonzero(ends_m) + 1  # exclusive index
        pw = np.where(weak, prob, 0.0).astype(np.float64)
        tot = np.add.reduceat(pw, rs)
        # reduceat over [rs[i], rs[i+1]) includes non-weak bases after the run: mask them
        pk = np.maximum.reduceat(pw, rs)
        st = np.add.reduceat(strong.astype(np.int64), rs) > 0
        cnt = re - rs
        rstart = pos[rs]
        rend = pos[re - 1] + 1
        rblock = blocks[rs]
        i0 = 0
        if cont:
            r = self.run
            r[1] = int(rend[0]); r[2] = r[2] or bool(st[0]); r[3] += float(tot[0])
            r[4] = max(r[4], float(pk[0])); r[5] += int(cnt[0])
            if re[0] == n:  # still open
                return
            self._close_run()
            i0 = 1
        # last run open if it reaches the batch end
        last_open = re[-1] == n and len(rs) > i0
        j1 = len(rs) - 1 if last_open else len(rs)
        sel = slice(i0, j1)
        keep = st[sel]
        if keep.any():
            self._emit_raw(rstart[sel][keep], rend[sel][keep], tot[sel][keep], pk[sel][keep],
                           cnt[sel][keep], rblock[sel][keep])
        if last_open:
            k = len(rs) - 1
            self.run = [int(rstart[k]), int(rend[k]), bool(st[k]), float(tot[k]), float(pk[k]),
                        int(cnt[k]), int(rblock[k])]

    def _close_run(self) -> None:
        r, self.run = self.run, None
        if r is not None and r[2]:
            self._emit_raw(np.array([r[0]]), np.array([r[1]]), np.array([r[3]]), np.array([r[4]]),
                           np.array([r[5]]), np.array([r[6]]))

    def finish(self) -> None:
        """Close the open run and the pending segment (end of contig)."""
        self._close_run()
        if self.pend is not None:
            s, e, t, p, n, _ = self.pend
            self.pend = None
            self._keep(np.array([s]), np.array([e]), np.array([t]), np.array([p]), np.array([n]))


def call_array(pos: np.ndarray, prob: np.ndarray, params: CallParams, batch_rows: Optional[int] = None):
    """Call one feature on one contig held in memory (testing/helper).

    Returns ``(start, end, mean_p, max_p)`` arrays; coordinates 0-based half-open.
    """
    pos = np.asarray(pos, np.int64)
    prob = np.asarray(prob, np.float32)
    c = FeatureCaller(params)
    step = batch_rows or max(len(pos), 1)
    for i in range(0, len(pos), step):
        c.feed(pos[i:i + step], prob[i:i + step])
    c.finish()
    s, e, t, p, n = c.out.arrays()
    return s, e, t / np.maximum(n, 1), p


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
                 chrom_sizes: Optional[Mapping[str, int]] = None, batch_rows: int = 1_000_000) -> dict:
    """Call intervals for every feature of a prediction dataset; write BED/GFF3 to ``calls_dir``.

    Args:
        dataset_dir: ``OUTDIR/<backbone>/predictions`` (Parquet, see :mod:`genoseg.store`).
        calls_dir: output directory (created atomically: it appears only when complete).
        params: overrides per feature, see :func:`resolve_params` (``None``: defaults).
        overwrite: replace an existing ``calls_dir``; otherwise GenosegError if it exists.
        features: subset of features to call (default: all, in model order).
        chrom_sizes: contig lengths (bp) for ``##sequence-region``; default: last
            predicted position + 1 of each contig.
        batch_rows: rows per streamed batch (results do not depend on it).

    Returns:
        summary dict: ``backbone``, ``features`` (name → ``count``, ``bp``, ``params``,
        ``bed``), ``contigs`` (name → predicted bases), ``bases``, ``seconds``.
    """
    t0 = time.time()
    meta = open_dataset(dataset_dir)
    all_features = list(meta["features"])
    feats = _features_subset(all_features, features)
    resolved = resolve_params(all_features, params)
    fidx = [all_features.index(f) for f in feats]
    contigs = list(store.list_contigs(dataset_dir))
    for c in contigs:
        _check_contig_name(c)
    names = {f: escape_name(f) + ".bed.gz" for f in feats}
    if len(set(n.lower() for n in names.values())) != len(names):
        raise GenosegError("feature names collide once escaped for file names")

    summary = {"backbone": meta.get("backbone"), "dataset": os.path.abspath(dataset_dir),
               "features": {f: {"count": 0, "bp": 0, "params": dataclasses.asdict(resolved[f]),
                                "bed": names[f]} for f in feats},
               "contigs": {}, "bases": 0}
    source = gff_escape(f"genoseg:{meta.get('backbone') or 'model'}")
    with atomic_path(calls_dir, overwrite=overwrite, is_dir=True) as tmp:
        beds = {f: open(os.path.join(tmp, names[f][:-3]), "w") for f in feats}
        body_path = os.path.join(tmp, ".gff3.body")
        body = open(body_path, "w")
        regions = []
        try:
            for contig in contigs:
                callers = [FeatureCaller(resolved[f]) for f in feats]
                nbases, last = 0, -1
                for pos, probs in store.iter_predictions(dataset_dir, contig, batch_rows=batch_rows):
                    if len(pos) == 0:
                        continue
                    if pos[0] <= last:
                        raise GenosegError(f"{dataset_dir}: positions on {contig!r} are not increasing")
                    nbases += len(pos)
                    last = int(pos[-1])
                    for c, j in zip(callers, fidx):
                        c.feed(pos, probs[:, j])
                summary["contigs"][contig] = nbases
                summary["bases"] += nbases
                size = int(chrom_sizes[contig]) if chrom_sizes and contig in chrom_sizes else last + 1
                if size > 0:
                    regions.append((contig, size))
                _write_contig(contig, feats, callers, beds, body, summary, source)
        finally:
            for fh in beds.values():
                fh.close()
            body.close()
        # GFF3 = header + body
        with open(os.path.join(tmp, "calls.gff3"), "w") as out:
            out.write("##gff-version 3\n")
            for contig, size in regions:
                out.write(f"##sequence-region {gff_escape_seqid(contig)} 1 {size}\n")
            with open(body_path) as fh:
                while True:
                    chunk = fh.read(1 << 22)
                    if not chunk:
                        break
                    out.write(chunk)
        os.remove(body_path)
        import pysam
        for f in feats:
            txt = os.path.join(tmp, names[f][:-3])
            gz = os.path.join(tmp, names[f])
            pysam.tabix_compress(txt, gz, force=True)
            os.remove(txt)
            pysam.tabix_index(gz, preset="bed", force=True)
        summary["seconds"] = round(time.time() - t0, 3)
        with open(os.path.join(tmp, "summary.json"), "w") as fh:
            json.dump(summary, fh, indent=1)
    log.info("called %d features on %d contigs (%d bases) in %.1f s: %s", len(feats), len(contigs),
             summary["bases"], summary["seconds"],
             ", ".join(f"{f}={v['count']}" for f, v in summary["features"].items()))
    return summary


def _fmt_lines(parts: Sequence[Sequence[str]]) -> str:
    return "".join("\t".join(row) + "\n" for row in zip(*parts))


def _write_contig(contig, feats, callers, beds, body, summary, source) -> None:
    """Write finished segments of one contig: BED per feature, GFF3 body sorted by start."""
    seqid = gff_escape_seqid(contig)
    all_rows = []
    for f, c in zip(feats, callers):
        c.finish()
        s, e, t, pk, n = c.out.arrays()
        if len(s) == 0:
            continue
        mean = t / np.maximum(n, 1)
        score = np.rint(mean * 1000).astype(np.int64)
        k = len(s)
        info = summary["features"][f]
        first_id = info["count"] + 1
        info["count"] += k
        info["bp"] += int((e - s).sum())
        ss, es = s.astype(str), e.astype(str)
        beds[f].write(_fmt_lines([[contig] * k, ss, es, [f] * k, score.astype(str), ["."] * k]))
        ftype = gff_escape(f)
        ids = [f"{ftype}_{i}" for i in range(first_id, first_id + k)]
        lines = [f"{seqid}\t{source}\t{ftype}\t{a + 1}\t{b}\t{m:.3f}\t.\t.\tID={i};Name={ftype};max_prob={x:.3f}\n"
                 for a, b, m, x, i in zip(s.tolist(), e.tolist(), mean.tolist(), pk.tolist(), ids)]
        all_rows.append((s, lines))
    if not all_rows:
        return
    starts = np.concatenate([s for s, _ in all_rows])
    lines = [ln for _, ls in all_rows for ln in ls]
    order = np.argsort(starts, kind="stable")
    body.write("".join(lines[i] for i in order))


def read_summary(calls_dir: str) -> Optional[dict]:
    """``summary.json`` written by :func:`call_dataset`, or None."""
    p = os.path.join(calls_dir, "summary.json")
    if not os.path.exists(p):
        return None
    with open(p) as fh:
        return json.load(fh)


def read_bed(path: str):
    """Read a (bgzipped) calls BED: returns ``(chrom list, start, end, score)`` arrays."""
    chroms, starts, ends, scores = [], [], [], []
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as fh:
        for line in fh:
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            a = line.rstrip("\n").split("\t")
            chroms.append(a[0]); starts.append(int(a[1])); ends.append(int(a[2]))
            scores.append(int(a[4]) if len(a) > 4 and a[4] not in (".", "") else 0)
    return chroms, np.array(starts, np.int64), np.array(ends, np.int64), np.array(scores, np.int64)
