"""Base-level evaluation of called intervals against a truth annotation.

Truth comes from a GFF3 (``type`` column = feature name, 1-based closed), calls from
``CALLS_DIR/<feature>.bed.gz`` (BED, bgzipped, 0-based half-open, one file per feature,
as ``genoseg call`` writes them). For each feature the bases covered by the truth and by
the calls are compared (overlapping intervals within a set count once):

- ``precision = TP / called bases``, ``recall = TP / truth bases``,
  ``F1 = 2 TP / (called + truth bases)``;
- the mean F1 is taken over the features that are both in the truth and called (a calls
  file exists for them).

Everything is interval arithmetic: a sort of the interval end points per contig and
feature, no per-base loop and no per-base mask, so it scales to whole genomes.
"""

from __future__ import annotations

import gzip
from urllib.parse import unquote
import logging
import os
from typing import Iterable, Optional, Sequence

import numpy as np
import pandas as pd

from .errors import GenosegError
from .outputs import escape_name

log = logging.getLogger(__name__)

COLUMNS = ["feature", "truth_bases", "called_bases", "tp_bases", "precision", "recall", "f1",
           "truth_intervals", "called_intervals", "in_truth", "called"]


# ------------------------------------------------------------------------------ reading
def read_gff3(path: str) -> pd.DataFrame:
    """Intervals of a GFF3 as ``chrom, start, end, feature`` (0-based half-open)."""
    if not os.path.isfile(path):
        raise GenosegError(f"truth GFF3 not found: {path}")
    opener = gzip.open if path.endswith(".gz") else open
    rows = []
    with opener(path, "rt") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.startswith("##FASTA"):
                break
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 8:
                raise GenosegError(f"{path}:{lineno}: expected 9 tab-separated GFF3 columns")
            try:
                start, end = int(parts[3]) - 1, int(parts[4])
            except ValueError:
                raise GenosegError(f"{path}:{lineno}: start/end are not integers") from None
            if start < 0 or end <= start:
                raise GenosegError(f"{path}:{lineno}: invalid interval {parts[3]}-{parts[4]}")
            rows.append((unquote(parts[0]), start, end, parts[2]))  # seqids are %-escaped (GFF3)
    return pd.DataFrame(rows, columns=["chrom", "start", "end", "feature"]).astype(
        {"start": np.int64, "end": np.int64})


def read_bed(path: str, feature: Optional[str] = None) -> pd.DataFrame:
    """Intervals of a (b)gzipped or plain BED as ``chrom, start, end, feature`` (feature:
    ``feature`` or the BED name column). Vectorised; every line is data, so contigs named
    ``#1`` or ``track_7`` are kept (see :func:`genoseg.textout.read_bed_table`)."""
    from .textout import read_bed_table

    cols = ("chrom", "start", "end") if feature else ("chrom", "start", "end", "name")
    df = read_bed_table(path, cols).to_pandas()
    df["feature"] = feature if feature else df.pop("name")
    return df[["chrom", "start", "end", "feature"]].astype({"chrom": str, "start": np.int64, "end": np.int64})


def calls_path(calls_dir: str, feature: str) -> str:
    return os.path.join(calls_dir, f"{escape_name(feature)}.bed.gz")


def read_calls(calls_dir: str, features: Optional[Iterable[str]] = None) -> tuple[pd.DataFrame, list[str]]:
    """All ``<feature>.bed.gz`` under ``calls_dir`` (or only ``features``).

    Returns the intervals and the list of features that have a calls file.
    """
    if not os.path.isdir(calls_dir):
        raise GenosegError(f"calls directory not found: {calls_dir}")
    if features is None:
        import urllib.parse

        names = sorted(urllib.parse.unquote(f[: -len(".bed.gz")]) for f in os.listdir(calls_dir)
                       if f.endswith(".bed.gz"))
    else:
        names = [f for f in features if os.path.isfile(calls_path(calls_dir, f))]
    frames = [read_bed(calls_path(calls_dir, f), feature=f) for f in names]
    df = pd.concat(frames, ignore_index=True) if frames else read_bed_empty()
    return df, names


def read_bed_empty() -> pd.DataFrame:
    return pd.DataFrame({"chrom": pd.Series(dtype=str), "start": pd.Series(dtype=np.int64),
                         "end": pd.Series(dtype=np.int64), "feature": pd.Series(dtype=str)})


def read_fai(path: str) -> dict:
    if not os.path.isfile(path):
        raise GenosegError(f"FASTA index not found: {path}")
    fai = pd.read_csv(path, sep="\t", header=None, usecols=[0, 1], dtype={0: str, 1: np.int64})
    return dict(zip(fai[0], fai[1]))


# --------------------------------------------------------------------------- arithmetic
def overlap_bases(truth: pd.DataFrame, calls: pd.DataFrame) -> tuple[int, int, int]:
    """``(truth bases, called bases, shared bases)`` of two interval sets (any contigs;
    overlaps within a set count once)."""
    t_bases = c_bases = tp = 0
    chroms = set(truth["chrom"]).union(calls["chrom"])
    t_groups = dict(tuple(truth.groupby("chrom", sort=False)))
    c_groups = dict(tuple(calls.groupby("chrom", sort=False)))
    empty = np.zeros(0, dtype=np.int64)
    for chrom in chroms:
        t = t_groups.get(chrom)
        c = c_groups.get(chrom)
        ts, te = (empty, empty) if t is None else (t["start"].to_numpy(np.int64), t["end"].to_numpy(np.int64))
        cs, ce = (empty, empty) if c is None else (c["start"].to_numpy(np.int64), c["end"].to_numpy(np.int64))
        pts = np.concatenate([ts, te, cs, ce])
        if pts.size == 0:
            continue
        nt, nc = ts.size, cs.size
        dt = np.concatenate([np.ones(nt), -np.ones(nt), np.zeros(2 * nc)]).astype(np.int64)
        dc = np.concatenate([np.zeros(2 * nt), np.ones(nc), -np.ones(nc)]).astype(np.int64)
        order = np.argsort(pts, kind="stable")
        pts, dt, dc = pts[order], dt[order], dc[order]
        cov_t, cov_c = np.cumsum(dt)[:-1] > 0, np.cumsum(dc)[:-1] > 0  # coverage after each point
        seg = np.diff(pts)  # length up to the next point (0 between equal points)
        t_bases += int(seg[cov_t].sum())
        c_bases += int(seg[cov_c].sum())
        tp += int(seg[cov_t & cov_c].sum())
    return t_bases, c_bases, tp


def intervals_from_mask(mask: np.ndarray, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Runs of ``True`` in a 1-D boolean array as ``(starts, ends)`` (half-open)."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(m[1:] != m[:-1])
    return edges[0::2] + offset, edges[1::2] + offset


def evaluate_intervals(truth: pd.DataFrame, calls: pd.DataFrame,
                       features: Optional[Sequence[str]] = None,
                       called_features: Optional[Sequence[str]] = None,
                       contig_lengths: Optional[dict] = None) -> pd.DataFrame:
    """Per-feature base-level metrics of ``calls`` against ``truth``.

    Both tables have ``chrom, start, end, feature`` (0-based half-open).
    ``called_features`` lists the features the caller predicts (default: those present in
    ``calls``); ``features`` restricts the rows (default: truth ∪ called features).
    With ``contig_lengths``, intervals are clipped to the contigs and intervals on other
    contigs dropped (with a warning). ``df.attrs["mean_f1"]`` is the mean F1 over the
    features that are both in the truth and called.
    """
    if contig_lengths is not None:
        truth, calls = _clip(truth, contig_lengths, "truth"), _clip(calls, contig_lengths, "calls")
    truth_features = list(dict.fromkeys(truth["feature"]))
    called = list(dict.fromkeys(called_features if called_features is not None else calls["feature"]))
    if features is None:
        features = truth_features + [f for f in called if f not in truth_features]
    t_by, c_by = dict(tuple(truth.groupby("feature"))), dict(tuple(calls.groupby("feature")))
    empty = truth.iloc[:0]
    rows = []
    for f in features:
        t, c = t_by.get(f, empty), c_by.get(f, empty)
        tb, cb, tp = overlap_bases(t, c)
        rows.append({
            "feature": f, "truth_bases": tb, "called_bases": cb, "tp_bases": tp,
            "precision": tp / cb if cb else np.nan, "recall": tp / tb if tb else np.nan,
            "f1": 2 * tp / (tb + cb) if tb + cb else np.nan,
            "truth_intervals": len(t), "called_intervals": len(c),
            "in_truth": f in truth_features, "called": f in called,
        })
    df = pd.DataFrame(rows, columns=COLUMNS)
    scored = df[df["in_truth"] & df["called"]]
    df.attrs["mean_f1"] = float(scored["f1"].mean()) if len(scored) else float("nan")
    df.attrs["mean_over"] = list(scored["feature"])
    return df


def _clip(df: pd.DataFrame, lengths: dict, what: str) -> pd.DataFrame:
    known = df["chrom"].isin(list(lengths))
    if not known.all():
        log.warning("%s: ignoring %d interval(s) on contigs not in the FASTA index (%s)", what,
                    int((~known).sum()), ", ".join(sorted(set(df.loc[~known, "chrom"]))[:5]))
    df = df[known].copy()
    lens = df["chrom"].map(lengths).to_numpy(np.int64)
    df["end"] = np.minimum(df["end"].to_numpy(np.int64), lens)
    df["start"] = np.maximum(df["start"].to_numpy(np.int64), 0)
    return df[df["end"] > df["start"]]


def evaluate_calls(truth_gff3: str, calls_dir: str, features: Optional[Sequence[str]] = None,
                   fai: Optional[str] = None) -> pd.DataFrame:
    """Base-level precision, recall and F1 per feature of ``CALLS_DIR/<feature>.bed.gz``
    against ``truth_gff3``; see :func:`evaluate_intervals` for the table."""
    truth = read_gff3(truth_gff3)
    calls, called = read_calls(calls_dir, features)
    if not called:
        raise GenosegError(f"{calls_dir}: no <feature>.bed.gz calls files found")
    lengths = read_fai(fai) if fai else None
    return evaluate_intervals(truth, calls, features=features, called_features=called,
                              contig_lengths=lengths)


def format_table(df: pd.DataFrame) -> str:
    """Human-readable table plus the mean F1 line."""
    view = df[["feature", "truth_bases", "called_bases", "tp_bases", "precision", "recall", "f1"]]
    text = view.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-")
    over = df.attrs.get("mean_over", [])
    return text + f"\nmean F1 over {len(over)} planted and called feature(s): {df.attrs.get('mean_f1', float('nan')):.3f}\n"


# ------------------------------------------------------- simple reference predictions
def acgt_runs(seq: str, min_length: int) -> list[tuple[int, int]]:
    """Runs of A/C/G/T (either case) of at least ``min_length`` bases, half-open."""
    codes = np.frombuffer(seq.upper().encode("ascii"), dtype=np.uint8)
    ok = np.isin(codes, np.frombuffer(b"ACGT", dtype=np.uint8))
    starts, ends = intervals_from_mask(ok)
    keep = ends - starts >= min_length
    return list(zip(starts[keep].tolist(), ends[keep].tolist()))


def predict_contigs(model, contigs: dict, window: Optional[int] = None, batch_size: int = 16) -> dict:
    """Per-base probabilities of a SegmentNT-type model over every A/C/G/T run at least one
    window long: windows at half-window stride, the last one aligned to the run's end,
    combined by a triangular weighted average (weights fall towards window edges).

    A small stand-alone reference for tests and the demo model's training script (genome
    runs use the windowing engine). Returns ``{chrom: (probs [len, F] float32, covered
    bool [len])}``.
    """
    window = int(window or model.window_length)
    weight = np.minimum(np.arange(window) + 1, window - np.arange(window)).astype(np.float32)
    out = {}
    for chrom, seq in contigs.items():
        n = len(seq)
        acc = np.zeros((n, len(model.features)), dtype=np.float32)
        wsum = np.zeros(n, dtype=np.float32)
        starts = []
        for s, e in acgt_runs(seq, window):
            pos = list(range(s, e - window + 1, window // 2))
            if pos[-1] != e - window:
                pos.append(e - window)
            starts.extend(pos)
        for i in range(0, len(starts), batch_size):
            chunk = starts[i:i + batch_size]
            seqs = [seq[s:s + window] for s in chunk]
            pad = batch_size - len(seqs)  # keep one batch shape: one compilation
            probs = model.predict(seqs + [seqs[-1]] * pad)[: len(seqs)]
            for s, p in zip(chunk, probs):
                acc[s:s + window] += p * weight[:, None]
                wsum[s:s + window] += weight
        covered = wsum > 0
        acc[covered] /= wsum[covered, None]
        out[chrom] = (acc, covered)
    return out


def threshold_calls(predictions: dict, features: Sequence[str], threshold: float = 0.5) -> pd.DataFrame:
    """Intervals where probability > ``threshold`` (no hysteresis, no smoothing)."""
    rows = []
    for chrom, (probs, covered) in predictions.items():
        for j, f in enumerate(features):
            s, e = intervals_from_mask((probs[:, j] > threshold) & covered)
            rows.append(pd.DataFrame({"chrom": chrom, "start": s, "end": e, "feature": f}))
    return pd.concat(rows, ignore_index=True) if rows else read_bed_empty()


def restrict(intervals: pd.DataFrame, predictions: dict) -> pd.DataFrame:
    """Clip intervals to the bases that have predictions (``covered``)."""
    cov = []
    for chrom, (_, covered) in predictions.items():
        s, e = intervals_from_mask(covered)
        cov.append(pd.DataFrame({"chrom": chrom, "start": s, "end": e}))
    cov = pd.concat(cov, ignore_index=True)
    merged = intervals.merge(cov, on="chrom", suffixes=("", "_c"))
    merged["start"] = np.maximum(merged["start"], merged["start_c"])
    merged["end"] = np.minimum(merged["end"], merged["end_c"])
    return merged.loc[merged["end"] > merged["start"], ["chrom", "start", "end", "feature"]].reset_index(drop=True)
