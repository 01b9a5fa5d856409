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
            start, end = gff_interval(parts, path, lineno)
            rows.append((unquote(parts[0]), start, end, parts[2]))  # seqids are %-escaped (GFF3)
    return pd.DataFrame(rows, columns=["chrom", "start", "end", "feature"]).astype(
        {"start": np.int64, "end": np.int64})


def gff_interval(parts: list, path: str, lineno: int) -> tuple[int, int]:
    """Columns 4-5 of a GFF line as a 0-based half-open ``(start, end)`` (GenosegError
    naming the file and line when they are not a valid interval)."""
    try:
        start, end = int(parts[3]) - 1, int(parts[4])
    except ValueError:
        raise GenosegError(f"{path}:{lineno}: start/end are not integers") from None
    if start < 0 or end <= start:
        raise GenosegError(f"{path}:{lineno}: invalid interval {parts[3]}-{parts[4]}")
    return start, end


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


# ===================================================================== gene models
# Gene-level scoring in the way gffcompare reports it (Pertea & Pertea 2020), computed
# with table joins (no per-base work):
#
# - base: exonic bases (union per contig and strand) shared by reference and prediction;
# - exon: an exon matches when its boundaries are equal, except the free (outer) end of
#   a reference transcript's first or last exon, which may differ by up to ``end_slack``
#   bp (gffcompare ``-e``, default 100); ``exon (exact)`` requires both ends;
# - intron: equal intron coordinates (unique introns);
# - intron chain: a multi-exon transcript whose full intron chain equals one of the
#   other set (gffcompare's "intron chain level", i.e. transcript structure);
# - transcript: intron chain match for multi-exon transcripts; single-exon transcripts
#   match a single-exon transcript overlapping >= 80 % of the longer one;
# - gene: a gene (GFF3 parent of transcripts) with at least one matching transcript.
#
# Sensitivity = matched reference items / reference items, precision = matched
# predicted items / predicted items, on the same strand. Every level is also reported
# for each strand alone.

GENE_LEVELS = ("base", "exon", "exon (exact)", "intron", "intron chain", "transcript", "gene")
GENE_COLUMNS = ["level", "strand", "reference", "predicted", "matched_reference", "matched_predicted",
                "sensitivity", "precision", "f1"]
_PART_TYPES = {"CDS", "five_prime_UTR", "three_prime_UTR", "UTR", "start_codon", "stop_codon"}


def _attributes(text: str, gtf: bool) -> dict:
    import urllib.parse

    out = {}
    for item in text.strip().strip(";").split(";"):
        item = item.strip()
        if not item:
            continue
        if gtf:
            key, _, value = item.partition(" ")
            out[key] = value.strip().strip('"')
        else:
            key, _, value = item.partition("=")
            out[key] = urllib.parse.unquote(value)
    return out


def read_gene_models(path: str, with_cds: bool = False):
    """Exons of the transcripts of a GFF3 (or GTF) annotation.

    Transcripts are the parents of ``exon`` features (for a transcript without exon
    features, its merged CDS/UTR parts), genes the parents of transcripts (the
    transcript itself when it has none). GTF files use ``transcript_id``/``gene_id``.

    Returns ``chrom, start, end, strand, transcript, gene`` (0-based half-open), sorted;
    with ``with_cds`` also the CDS segments in the same columns: ``(exons, cds)``.
    """
    if not os.path.isfile(path):
        raise GenosegError(f"gene models GFF3 not found: {path}")
    opener = gzip.open if path.endswith(".gz") else open
    parent_of, rows = {}, []
    gtf = path.rstrip(".gz").endswith((".gtf", ".gtf2"))
    with opener(path, "rt") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.startswith("##FASTA"):
                break
            if line.startswith("#") or not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 9:
                raise GenosegError(f"{path}:{lineno}: expected 9 tab-separated GFF3 columns, got {len(parts)}")
            ftype = parts[2]
            if ftype != "exon" and ftype not in _PART_TYPES and gtf:
                continue
            attrs = _attributes(parts[8], gtf)
            if gtf:
                tid, gid = attrs.get("transcript_id"), attrs.get("gene_id")
                if tid:
                    parent_of[tid] = gid or tid
                    parents = [tid]
                else:
                    continue
            else:
                parents = [p for p in attrs.get("Parent", "").split(",") if p]
                if "ID" in attrs:
                    parent_of[attrs["ID"]] = parents[0] if parents else None
                if ftype != "exon" and ftype not in _PART_TYPES:
                    continue
            start, end = gff_interval(parts, path, lineno)
            if parts[6] not in "+-" or not parts[6]:
                raise GenosegError(f"{path}:{lineno}: {ftype} without a strand (+ or -)")
            for p in parents:
                rows.append((unquote(parts[0]), start, end, parts[6], p, ftype == "exon", ftype == "CDS"))
    df = pd.DataFrame(rows, columns=["chrom", "start", "end", "strand", "transcript", "is_exon", "is_cds"])
    cds = df.loc[df["is_cds"], ["chrom", "start", "end", "strand", "transcript"]]
    df = df.drop(columns="is_cds")
    has_exon = set(df.loc[df["is_exon"], "transcript"])
    exons = df[df["is_exon"]]
    parts = df[~df["is_exon"] & ~df["transcript"].isin(has_exon)]
    if len(parts):  # transcripts described by CDS/UTR parts only: their union is the exons
        parts = _merge_touching(parts)
    df = pd.concat([exons, parts], ignore_index=True).drop(columns="is_exon")
    df["gene"] = [parent_of.get(t) or t for t in df["transcript"]]
    df = df.drop_duplicates(["transcript", "start", "end"])
    df = df.sort_values(["chrom", "start", "end", "transcript"], kind="stable").reset_index(drop=True)
    if not with_cds:
        return df
    cds = cds.assign(gene=[parent_of.get(t) or t for t in cds["transcript"]])
    return df, cds.sort_values(["chrom", "start", "end"], kind="stable").reset_index(drop=True)


def _merge_touching(df: pd.DataFrame) -> pd.DataFrame:
    """Per transcript, merge intervals that overlap or touch (CDS + UTR parts -> exons)."""
    df = df.sort_values(["transcript", "start"], kind="stable").reset_index(drop=True)
    reach = df.groupby("transcript", sort=False)["end"].cummax()
    same = df["transcript"].eq(df["transcript"].shift())
    new = ~same | (df["start"] > reach.shift())
    grp = np.cumsum(new.to_numpy()) - 1
    out = df.groupby(grp, sort=False).agg(chrom=("chrom", "first"), start=("start", "min"), end=("end", "max"),
                                          strand=("strand", "first"), transcript=("transcript", "first"))
    out["is_exon"] = True
    return out.reset_index(drop=True)


def _transcript_table(exons: pd.DataFrame) -> pd.DataFrame:
    """One row per transcript: chrom, strand, gene, start, end, n_exons, chain (intron
    coordinates as a tuple, empty for single-exon transcripts)."""
    rows = []
    for tid, d in exons.groupby("transcript", sort=False):
        s, e = d["start"].to_numpy(), d["end"].to_numpy()
        rows.append((tid, d["chrom"].iat[0], d["strand"].iat[0], d["gene"].iat[0], int(s[0]), int(e.max()),
                     len(d), tuple(zip(e[:-1].tolist(), s[1:].tolist()))))
    return pd.DataFrame(rows, columns=["transcript", "chrom", "strand", "gene", "start", "end", "n_exons",
                                       "chain"])


def _exon_table(exons: pd.DataFrame) -> pd.DataFrame:
    """Unique exons with the free-end flags of :func:`compare_gene_models` (an end is
    free when it is the outer end of a first/last exon in every transcript holding it)."""
    d = exons.copy()
    first = ~d.duplicated("transcript", keep="first")
    last = ~d.duplicated("transcript", keep="last")
    d["free_start"], d["free_end"] = first.to_numpy(), last.to_numpy()
    return d.groupby(["chrom", "strand", "start", "end"], as_index=False).agg(
        free_start=("free_start", "all"), free_end=("free_end", "all"))


def _match_exons(ref: pd.DataFrame, pred: pd.DataFrame, slack: int) -> tuple[int, int]:
    """(matched reference exons, matched predicted exons); free reference ends within
    ``slack`` bp."""
    keys = ["chrom", "strand"]
    ref = ref.reset_index(drop=True).assign(rid=lambda x: np.arange(len(x)))
    pred = pred.reset_index(drop=True).assign(pid=lambda x: np.arange(len(x)))
    pairs = []
    for fs, fe in ((False, False), (True, False), (False, True), (True, True)):
        r = ref[(ref["free_start"] == fs) & (ref["free_end"] == fe)]
        on = keys + ([] if fs else ["start"]) + ([] if fe else ["end"])
        if fs and fe:  # single-exon reference transcript: join on 1 kb bins, then filter
            r = r.assign(bin=r["start"] // 1000)
            p = pd.concat([pred.assign(bin=pred["start"] // 1000 + k) for k in (-1, 0, 1)])
            on = keys + ["bin"]
        else:
            p = pred
        m = r.merge(p, on=on, suffixes=("", "_p"))
        ok = np.ones(len(m), bool)
        if fs:
            ok &= np.abs(m["start"].to_numpy() - m["start_p" if "start_p" in m else "start"].to_numpy()) <= slack
        if fe:
            ok &= np.abs(m["end"].to_numpy() - m["end_p" if "end_p" in m else "end"].to_numpy()) <= slack
        pairs.append(m.loc[ok, ["rid", "pid"]])
    pairs = pd.concat(pairs)
    return pairs["rid"].nunique(), pairs["pid"].nunique()


def _single_exon_matches(rt: pd.DataFrame, pt: pd.DataFrame) -> pd.DataFrame:
    """Pairs (reference, predicted transcript) of single-exon transcripts on the same
    strand overlapping >= 80 % of the longer one."""
    r = rt[rt["n_exons"] == 1]
    p = pt[pt["n_exons"] == 1]
    if not len(r) or not len(p):
        return pd.DataFrame({"transcript_r": [], "transcript_p": []})
    r = r.assign(bin=r["start"] // 10_000)
    p = pd.concat([p.assign(bin=p["start"] // 10_000 + k) for k in (-1, 0, 1)])
    m = r.merge(p, on=["chrom", "strand", "bin"], suffixes=("_r", "_p"))
    ov = np.minimum(m["end_r"], m["end_p"]) - np.maximum(m["start_r"], m["start_p"])
    longer = np.maximum(m["end_r"] - m["start_r"], m["end_p"] - m["start_p"])
    return m.loc[ov >= 0.8 * longer, ["transcript_r", "transcript_p"]]


def _row(level, strand, n_ref, n_pred, m_ref, m_pred) -> dict:
    sn = m_ref / n_ref if n_ref else np.nan
    pr = m_pred / n_pred if n_pred else np.nan
    f1 = 2 * sn * pr / (sn + pr) if n_ref and n_pred and sn + pr > 0 else (0.0 if n_ref and n_pred else np.nan)
    return {"level": level, "strand": strand, "reference": n_ref, "predicted": n_pred,
            "matched_reference": m_ref, "matched_predicted": m_pred, "sensitivity": sn, "precision": pr, "f1": f1}


def compare_gene_models(reference: pd.DataFrame, predicted: pd.DataFrame, end_slack: int = 100,
                        contig_lengths: Optional[dict] = None) -> pd.DataFrame:
    """gffcompare-style sensitivity and precision of ``predicted`` gene models against
    ``reference`` (both from :func:`read_gene_models`), per level (:data:`GENE_LEVELS`)
    for both strands (``strand`` "both") and each strand alone (:data:`GENE_COLUMNS`).
    With ``contig_lengths``, transcripts on contigs not listed are left out of both sets
    (e.g. contigs that were not annotated)."""
    if contig_lengths is not None:
        keep = list(contig_lengths)
        dropped = sorted(set(reference.loc[~reference["chrom"].isin(keep), "chrom"]))
        if dropped:
            log.warning("reference gene models on %d contig(s) not in the FASTA index left out (%s)",
                        len(dropped), ", ".join(dropped[:5]))
        reference = reference[reference["chrom"].isin(keep)]
        predicted = predicted[predicted["chrom"].isin(keep)]
    rows = []
    for strand in ("both", "+", "-"):
        r = reference if strand == "both" else reference[reference["strand"] == strand]
        p = predicted if strand == "both" else predicted[predicted["strand"] == strand]
        rows.extend(_levels(r, p, strand, end_slack))
    return pd.DataFrame(rows, columns=GENE_COLUMNS)


def _levels(r: pd.DataFrame, p: pd.DataFrame, strand: str, slack: int) -> list[dict]:
    out = []
    key = lambda d: d.assign(chrom=d["chrom"] + "\t" + d["strand"])  # noqa: E731 - strand-aware bases
    tb, pb, shared = overlap_bases(key(r), key(p))
    out.append(_row("base", strand, tb, pb, shared, shared))
    re_, pe_ = _exon_table(r), _exon_table(p)
    mr, mp = _match_exons(re_, pe_, slack)
    out.append(_row("exon", strand, len(re_), len(pe_), mr, mp))
    exact = re_.merge(pe_, on=["chrom", "strand", "start", "end"])
    out.append(_row("exon (exact)", strand, len(re_), len(pe_), len(exact), len(exact)))
    rt, pt = _transcript_table(r), _transcript_table(p)
    ri, pi = _introns(rt), _introns(pt)
    both = len(ri.merge(pi))
    out.append(_row("intron", strand, len(ri), len(pi), both, both))
    chain = lambda t: t[t["n_exons"] > 1].assign(key=lambda d: list(zip(d["chrom"], d["strand"], d["chain"])))  # noqa: E731
    rc, pc = chain(rt), chain(pt)
    r_ok, p_ok = rc["key"].isin(set(pc["key"])), pc["key"].isin(set(rc["key"]))
    out.append(_row("intron chain", strand, len(rc), len(pc), int(r_ok.sum()), int(p_ok.sum())))
    single = _single_exon_matches(rt, pt)
    r_match = set(rc.loc[r_ok, "transcript"]) | set(single["transcript_r"])
    p_match = set(pc.loc[p_ok, "transcript"]) | set(single["transcript_p"])
    out.append(_row("transcript", strand, len(rt), len(pt), len(r_match), len(p_match)))
    rg, pg = rt.groupby("gene")["transcript"], pt.groupby("gene")["transcript"]
    out.append(_row("gene", strand, rg.ngroups, pg.ngroups,
                    int(rg.agg(lambda t: bool(set(t) & r_match)).sum()) if len(rt) else 0,
                    int(pg.agg(lambda t: bool(set(t) & p_match)).sum()) if len(pt) else 0))
    return out


def _introns(t: pd.DataFrame) -> pd.DataFrame:
    rows = [(c, s, a, b) for c, s, ch in zip(t["chrom"], t["strand"], t["chain"]) for a, b in ch]
    return pd.DataFrame(rows, columns=["chrom", "strand", "start", "end"]).drop_duplicates()


def evaluate_gene_models(truth_gff3: str, genes_gff3: str, fai: Optional[str] = None,
                         end_slack: int = 100) -> pd.DataFrame:
    """:func:`compare_gene_models` of two GFF3 files (reference, prediction)."""
    ref = read_gene_models(truth_gff3)
    if not len(ref):
        raise GenosegError(f"{truth_gff3}: no gene models (exon features with a Parent transcript) found; "
                           "gene-level scoring needs gene -> mRNA -> exon GFF3 (e.g. truth_genes.gff3 "
                           "from genoseg simulate, GENCODE or Ensembl)")
    pred = read_gene_models(genes_gff3)
    return compare_gene_models(ref, pred, end_slack=end_slack, contig_lengths=read_fai(fai) if fai else None)


def format_gene_table(df: pd.DataFrame) -> str:
    """Human-readable gene-level table (both strands, then per strand sensitivity/precision)."""
    both = df[df["strand"] == "both"].set_index("level")
    lines = [f"{'level':<14}{'Sn':>7}{'Pr':>7}{'F1':>7}{'reference':>11}{'predicted':>11}"
             f"{'Sn +':>8}{'Pr +':>7}{'Sn -':>8}{'Pr -':>7}"]
    fmt = lambda v: "    -" if pd.isna(v) else f"{v:.3f}"  # noqa: E731
    for level in GENE_LEVELS:
        r = both.loc[level]
        per = {s: df[(df["strand"] == s) & (df["level"] == level)].iloc[0] for s in "+-"}
        lines.append(f"{level:<14}{fmt(r.sensitivity):>7}{fmt(r.precision):>7}{fmt(r.f1):>7}{r.reference:>11,}"
                     f"{r.predicted:>11,}{fmt(per['+'].sensitivity):>8}{fmt(per['+'].precision):>7}"
                     f"{fmt(per['-'].sensitivity):>8}{fmt(per['-'].precision):>7}")
    return "\n".join(lines) + "\n"
