"""Report: one self-contained HTML page summarising a genome run.

``write_report(backbone_dir, out_path, ...)`` reads ``backbone_dir`` =
``OUTDIR/<backbone>`` (``predictions/``, ``calls/``) and optional run records, and writes
one HTML file with inline CSS and inline SVG (drawn here with numpy; no scripts, no
external resources). Sections: what ran (model, inputs, parameters), what was skipped and
why, calls per feature (count, bp, % of predicted bases, lengths), length histograms,
probability tracks over a few regions (stacked per feature with the calls underneath,
like Fig. 3 of the SegmentNT paper), evaluation (precision/recall/F1) and timings.

Every string that comes from data (contig names, paths, plan entries) goes through
:func:`html.escape`. Coordinates: regions are given ``chrom:start-end`` 1-based closed
(samtools style) and shown so; internally 0-based half-open.
"""

from __future__ import annotations

import dataclasses
import datetime
import html
import json
import logging
import math
import os
import re
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

import numpy as np

from . import store
from .errors import GenosegError
from .jsonfile import read_json
from .outputs import atomic_path, escape_name

log = logging.getLogger(__name__)

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#7f7f7f", "#bcbd22", "#393b79", "#ad494a", "#637939", "#843c39", "#5254a3", "#6b6ecf"]

Region = tuple  # (contig, start0, end0)


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


# ------------------------------------------------------------------------------ inputs
def parse_region(text: str) -> Region:
    """``chrom:start-end`` (1-based closed, commas allowed) → ``(chrom, start0, end0)``.

    The contig name may itself contain ``:``; the last ``:`` separates the range.
    """
    m = re.fullmatch(r"(.+):([\d,]+)-([\d,]+)", text.strip())
    if not m:
        raise GenosegError(f"region {text!r}: expected CHROM:START-END (1-based, inclusive)")
    a, b = int(m.group(2).replace(",", "")), int(m.group(3).replace(",", ""))
    if a < 1 or b < a:
        raise GenosegError(f"region {text!r}: need 1 <= START <= END")
    return (m.group(1), a - 1, b)


def _load_json(x, what: str):
    if x is None or isinstance(x, (dict, list)):
        return x
    return read_json(x, what)


def _load_evaluation(x):
    """Evaluation table (TSV path or DataFrame) → (columns, rows as lists of str)."""
    if x is None:
        return None
    import pandas as pd

    if isinstance(x, pd.DataFrame):
        df = x
    else:
        if not os.path.exists(x):
            raise GenosegError(f"evaluation file {x} does not exist")
        try:
            df = pd.read_csv(x, sep="\t", comment="#")
        except Exception as exc:
            raise GenosegError(f"evaluation file {x} is not a TSV table: {exc}") from exc
    return df


def _timings_rows(t) -> list[tuple[str, float]]:
    """Accepts ``{step: seconds}``, ``{step: {"seconds": s, ...}}`` or a list of
    ``{"step"/"name": ..., "seconds"/"wall_s": ...}``."""
    rows = []
    items = t.items() if isinstance(t, dict) else ((d.get("step") or d.get("name") or "?", d) for d in t)
    for k, v in items:
        if isinstance(v, dict):
            v = next((v[key] for key in ("seconds", "wall_s", "elapsed", "time", "duration") if key in v), None)
        try:
            rows.append((str(k), float(v)))
        except (TypeError, ValueError):
            continue
    return rows


class CallStats:
    """One feature's calls, summarised while streaming its BED once: count, bp, score sum,
    the distinct lengths with their counts, the last end per contig and the number of
    calls starting in each ``width`` bp window. Memory grows with the distinct lengths and
    windows, not with the number of calls."""

    def __init__(self, width: int):
        self.width = int(width)
        self.count = self.bp = self.score_sum = 0
        self._lengths: list[tuple[np.ndarray, np.ndarray]] = []
        self.ends: dict[str, int] = {}
        self.windows: dict[tuple[str, int], int] = {}

    def add(self, batch) -> None:
        import pyarrow.compute as pc

        s = batch.column(1).to_numpy()
        e = batch.column(2).to_numpy()
        L = e - s
        self.count += int(s.size)
        self.bp += int(L.sum())
        self.score_sum += int(batch.column(3).to_numpy().sum())
        self._lengths.append(np.unique(L, return_counts=True))
        if len(self._lengths) > 32:
            self._lengths = [self.lengths()]
        enc = pc.dictionary_encode(batch.column(0))
        names = enc.dictionary.to_pylist()
        idx = enc.indices.to_numpy()
        last = np.zeros(len(names), np.int64)
        np.maximum.at(last, idx, e)
        for c, x in zip(names, last.tolist()):
            self.ends[c] = max(self.ends.get(c, 0), x)
        keys, cnt = np.unique((idx.astype(np.int64) << 40) | (s // self.width), return_counts=True)
        for k, c in zip(keys.tolist(), cnt.tolist()):
            key = (names[k >> 40], k & ((1 << 40) - 1))
            self.windows[key] = self.windows.get(key, 0) + c

    def lengths(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct call lengths (bp, increasing) and how many calls have each."""
        if not self._lengths:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        v = np.concatenate([a for a, _ in self._lengths])
        c = np.concatenate([b for _, b in self._lengths])
        u, inv = np.unique(v, return_inverse=True)
        return u, np.bincount(inv, weights=c, minlength=u.size).astype(np.int64)

    def median_length(self) -> float:
        v, c = self.lengths()
        if not self.count:
            return float("nan")
        cum = np.cumsum(c)
        lo, hi = v[np.searchsorted(cum, (self.count - 1) // 2, side="right")], v[np.searchsorted(cum, self.count // 2, side="right")]
        return (lo + hi) / 2


def _calls_table(calls_dir: str, features: Sequence[str], width: int = 20_000) -> dict[str, CallStats]:
    """Per feature with a ``<feature>.bed.gz``: its :class:`CallStats` (streamed, bounded memory)."""
    from .textout import iter_bed

    out = {}
    for f in features:
        p = os.path.join(calls_dir, escape_name(f) + ".bed.gz")
        if os.path.exists(p):
            st = CallStats(width)
            for batch in iter_bed(p, ("chrom", "start", "end", "score")):
                st.add(batch)
            out[f] = st
    return out


def _region_calls(calls_dir: str, features: Sequence[str], region: Region) -> dict[str, tuple]:
    """Calls of each feature overlapping ``region`` (tabix query: memory ~ the region):
    feature -> (contig list, start, end, score)."""
    import pysam

    contig, r0, r1 = region
    out = {}
    for f in features:
        p = os.path.join(calls_dir, escape_name(f) + ".bed.gz")
        if not os.path.exists(p):
            continue
        rows = []
        with pysam.TabixFile(p, encoding="utf-8") as tbx:
            if contig in tbx.contigs:
                rows = [ln.split("\t") for ln in tbx.fetch(contig, r0, r1)]
        out[f] = ([r[0] for r in rows], np.array([int(r[1]) for r in rows], np.int64),
                  np.array([int(r[2]) for r in rows], np.int64), np.array([int(r[4]) for r in rows], np.int64))
    return out


# ------------------------------------------------------------------------------ SVG
def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    span = max(hi - lo, 1e-9)
    step = 10 ** math.floor(math.log10(span / n))
    for m in (1, 2, 5, 10):
        if span / (step * m) <= n:
            step *= m
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _fmt_bp(x: float) -> str:
    x = float(x)
    for unit, div in (("Mb", 1e6), ("kb", 1e3)):
        if abs(x) >= div:
            v = x / div
            return f"{v:.{0 if v == int(v) else 1 if abs(v) >= 10 else 2}f} {unit}"
    return f"{int(x)} bp"


def _tick_anchor(x: float, lo: float, hi: float, room: float = 30) -> str:
    """Text anchor that keeps a tick label inside ``[lo, hi]`` (ends are not clipped)."""
    return "start" if x - lo < room else "end" if hi - x < room else "middle"


def svg_tracks(region: Region, features: Sequence[str], pos: np.ndarray, probs: np.ndarray,
               calls: Mapping[str, tuple], colors: Mapping[str, str], width: int = 1080,
               thresholds: Optional[Mapping[str, float]] = None, gene_rows: Sequence = ()) -> str:
    """Stacked probability tracks (one panel per feature) over ``region`` with the calls
    of each feature drawn as bars beneath its curve, then ``gene_rows`` (``(label,
    draw)`` pairs from :func:`genoseg.report_genes.gene_rows`: gene diagrams).
    ``pos`` 0-based, ``probs`` [n, F]."""
    contig, r0, r1 = region
    left, right, ph, gap, top = 170, 10, 34, 6, 8
    pw = width - left - right
    n = len(features)
    rows_h = [draw(0, left, pw, True) for _, draw in gene_rows]  # heights only
    h = top + n * (ph + gap) + sum(rows_h) + len(rows_h) * gap + 30
    L = r1 - r0
    npx = min(pw, L)
    # per-pixel max (keeps narrow peaks visible); NaN where no base has a prediction
    px = ((pos - r0) * npx // max(L, 1)).astype(np.int64)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" class="plot" '
             f'role="img" aria-label="probability tracks">']
    for k, f in enumerate(features):
        y0 = top + k * (ph + gap)
        col = colors[f]
        parts.append(f'<rect x="{left}" y="{y0}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y0 + ph / 2 + 4:.1f}" text-anchor="end" class="lab">{esc(f)}</text>')
        thr = (thresholds or {}).get(f)
        if thr is not None:
            yt = y0 + ph - 5 - thr * (ph - 7)
            parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{yt:.1f}" y2="{yt:.1f}" stroke="#999" '
                         f'stroke-dasharray="3,3" stroke-width="0.7"/>')
        if len(pos):
            v = np.full(npx, np.nan)
            np.fmax.at(v, px, probs[:, k].astype(np.float64))
            cy = y0 + ph - 5  # curve area: y0+1 .. y0+ph-5 ; calls bar beneath
            ch = ph - 7
            xs = left + (np.arange(npx) + 0.5) * pw / npx
            ok = ~np.isnan(v)
            # split into contiguous runs of pixels with data
            edges = np.flatnonzero(np.diff(np.concatenate(([0], ok.astype(np.int8), [0]))))
            for a, b in zip(edges[::2], edges[1::2]):
                xx, yy = xs[a:b], cy - v[a:b] * ch
                pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xx, yy))
                area = f"{xx[0]:.1f},{cy:.1f} {pts} {xx[-1]:.1f},{cy:.1f}"
                parts.append(f'<polygon points="{area}" fill="{col}" fill-opacity="0.25" stroke="none"/>')
                parts.append(f'<polyline points="{pts}" fill="none" stroke="{col}" stroke-width="1.2"/>')
        c = calls.get(f)
        if c is not None:
            chroms, s, e, _ = c
            m = np.array([ch_ == contig for ch_ in chroms], bool) if len(chroms) else np.zeros(0, bool)
            m &= (e > r0) & (s < r1)
            for a, b in zip(np.maximum(s[m], r0), np.minimum(e[m], r1)):
                x = left + (a - r0) * pw / L
                w = max((b - a) * pw / L, 1.0)
                parts.append(f'<rect x="{x:.1f}" y="{y0 + ph - 4}" width="{w:.1f}" height="3" fill="{col}"/>')
    yb = top + n * (ph + gap)
    for (label, draw), rh in zip(gene_rows, rows_h):
        parts.append(f'<text x="{left - 6}" y="{yb + rh / 2 + 4:.1f}" text-anchor="end" class="lab">{esc(label)}</text>')
        parts.append(draw(yb, left, pw, False))
        yb += rh + gap
    for t in _nice_ticks(r0 + 1, r1):
        x = left + (t - 1 - r0) * pw / L
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{yb - gap}" y2="{yb}" stroke="#555"/>')
        parts.append(f'<text x="{x:.1f}" y="{yb + 12}" text-anchor="{_tick_anchor(x, left, left + pw)}" '
                     f'class="tick">{t:,.0f}</text>')
    parts.append(f'<text x="{left}" y="{yb + 26}" class="tick">{esc(contig)} (1-based; curve = probability 0–1, '
                 f'dashed = calling threshold HIGH, bar = call)</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_histogram(lengths: np.ndarray, color: str, width: int = 260, height: int = 120,
                  weights: Optional[np.ndarray] = None) -> str:
    """Histogram of interval lengths (bp) on log10-spaced bins (``weights``: how many
    intervals have each length; default one each)."""
    left, bottom, top = 34, 22, 6
    pw, ph = width - left - 6, height - bottom - top
    lengths = np.asarray(lengths)
    hi = max(float(lengths.max()) if len(lengths) else 10.0, 10.0)
    edges = np.logspace(0, math.log10(hi) + 1e-9, 21)
    cnt, _ = np.histogram(lengths, bins=edges, weights=weights)
    cnt = cnt.astype(np.int64)
    cmax = max(int(cnt.max()) if len(cnt) else 1, 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="plot">',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ddd"/>']
    bw = pw / len(cnt)
    for i, c in enumerate(cnt):
        if c:
            bh = c / cmax * ph
            parts.append(f'<rect x="{left + i * bw + 0.5:.1f}" y="{top + ph - bh:.1f}" width="{bw - 1:.1f}" '
                         f'height="{bh:.1f}" fill="{color}"><title>{int(edges[i])}–{int(edges[i + 1])} bp: {c}</title></rect>')
    lg = math.log10(edges[-1])
    for d in range(0, int(lg) + 1):
        x = left + d / lg * pw
        parts.append(f'<text x="{x:.1f}" y="{height - 8}" text-anchor="{_tick_anchor(x, left - 20, left + pw, 20)}" '
                     f'class="tick">{_fmt_bp(10 ** d)}</text>')
    parts.append(f'<text x="{left - 3}" y="{top + 9}" text-anchor="end" class="tick">{cmax}</text>')
    parts.append(f'<text x="{left - 3}" y="{top + ph}" text-anchor="end" class="tick">0</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_bars(rows: Sequence[tuple[str, float]], unit: str = "s", width: int = 640, color: str = "#4c78a8") -> str:
    """Horizontal bar chart, one bar per (label, value)."""
    left, bh = 200, 20
    h = len(rows) * bh + 10
    vmax = max([v for _, v in rows] + [1e-9])
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" class="plot">']
    for i, (lab, v) in enumerate(rows):
        y = 5 + i * bh
        w = v / vmax * (width - left - 90)
        parts.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end" class="lab">{esc(lab)}</text>')
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{max(w, 1):.1f}" height="{bh - 6}" fill="{color}"/>')
        num = f"{v:,.0f}" if float(v).is_integer() else f"{v:,.1f}"
        parts.append(f'<text x="{left + w + 5:.1f}" y="{y + 14}" class="tick">{num} {esc(unit)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# ------------------------------------------------------------------------------ HTML
CSS = """
body{font:14px/1.45 -apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#222;margin:24px auto;max-width:1120px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;border-bottom:1px solid #ddd;padding-bottom:3px;margin-top:28px}
h3{font-size:14px;margin:14px 0 4px}
.sub{color:#666} table{border-collapse:collapse;margin:6px 0 10px}
td,th{border:1px solid #ddd;padding:3px 8px;vertical-align:top} th{background:#f3f3f3;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.kv td:first-child{color:#555;white-space:nowrap}
.bar{display:inline-block;height:9px;background:#4c78a8;vertical-align:middle;margin-right:6px}
.sw{display:inline-block;width:10px;height:10px;margin-right:5px;vertical-align:-1px}
.grid{display:flex;flex-wrap:wrap;gap:6px 14px}
.grid figure{margin:0} figcaption{font-size:12px;color:#444}
svg.plot text{font:11px Helvetica,Arial,sans-serif;fill:#333} svg.plot text.tick{font-size:10px;fill:#555}
.note{color:#666;font-size:12px} code{background:#f5f5f5;padding:0 3px}
.warn{color:#a33}
.banner{background:#fff4e5;border:1px solid #f0b46c;padding:8px 12px;margin:10px 0;border-radius:4px}
table.summary td:last-child{font-weight:600}
pre.cmd{background:#f5f5f5;padding:6px 10px;white-space:pre-wrap;word-break:break-all;font-size:12px}
"""


def _kv_table(d: Mapping[str, Any]) -> str:
    rows = []
    for k, v in d.items():
        if isinstance(v, (dict, list)):
            v = json.dumps(v, default=str)
            if len(v) > 300:
                v = v[:300] + " …"
        rows.append(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>")
    return f'<table class="kv">{"".join(rows)}</table>'


def _records_table(items: Sequence, limit: int = 100) -> str:
    """List of dicts (or scalars) → table with the union of keys as columns."""
    items = list(items)
    if not items:
        return "<p>None.</p>"
    if not all(isinstance(x, dict) for x in items):
        return "<ul>" + "".join(f"<li>{esc(x)}</li>" for x in items[:limit]) + "</ul>"
    cols: list[str] = []
    for x in items:
        for k in x:
            if k not in cols:
                cols.append(k)
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    body = []
    for x in items[:limit]:
        body.append("<tr>" + "".join(
            f'<td{" class=n" if isinstance(x.get(c), (int, float)) else ""}>'
            f'{esc(x.get(c, "")) if not isinstance(x.get(c), float) else f"{x.get(c):,.4g}"}</td>'
            for c in cols) + "</tr>")
    more = f'<p class="note">… and {len(items) - limit} more</p>' if len(items) > limit else ""
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{more}"


def _df_table(df) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
    rows = []
    for rec in df.itertuples(index=False):
        cells = []
        for v in rec:
            if isinstance(v, (float, np.floating)):
                cells.append(f'<td class="n">{"–" if np.isnan(v) else f"{v:.3f}" if abs(v) <= 1 else f"{v:,.0f}"}</td>')
            elif isinstance(v, (int, np.integer)):
                cells.append(f'<td class="n">{v:,}</td>')
            else:
                cells.append(f"<td>{esc(v)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def default_regions(windows: Mapping[tuple[str, int], int], sizes: Mapping[str, int], n: int = 3,
                    width: int = 20_000) -> list[Region]:
    """The ``n`` windows of ``width`` bp (aligned, one per window) holding the most calls
    (``windows``: (contig, window index) -> calls starting there, all features together),
    ties broken by genome order."""
    rank = {c: i for i, c in enumerate(sizes)}
    best = sorted(windows.items(), key=lambda kv: (-kv[1], rank.get(kv[0][0], len(rank)), kv[0][1]))
    out = []
    for (c, b), _ in best[:n]:
        out.append((c, b * width, min((b + 1) * width, sizes.get(c, (b + 1) * width))))
    return out


def _region_probs(dataset_dir: str, region: Region, nfeat: int):

    contig, r0, r1 = region
    if contig not in set(store.list_contigs(dataset_dir)):
        return np.zeros(0, np.int64), np.zeros((0, nfeat), np.float32)
    ps, qs = [], []
    for pos, probs in store.iter_predictions(dataset_dir, contig):
        if len(pos) == 0:
            continue
        if pos[0] >= r1:
            break
        m = (pos >= r0) & (pos < r1)
        if m.any():
            ps.append(np.asarray(pos[m], np.int64))
            qs.append(np.asarray(probs[m], np.float32))
    if not ps:
        return np.zeros(0, np.int64), np.zeros((0, nfeat), np.float32)
    return np.concatenate(ps), np.concatenate(qs)


@dataclasses.dataclass
class _Run:
    """What the report's sections read: one run's files, loaded once."""

    backbone_dir: str
    backbone: str
    meta: dict
    contigs: list
    summary: Optional[dict]
    features: list
    colors: dict
    calls: dict
    predicted: dict
    total_bases: int
    sizes: dict
    plan: Any
    timings: Any
    evaluation: Any
    gene_evaluation: Any
    genes: Any  # report_genes.GeneModels or None
    truth_genes: Any
    command: Optional[str]
    location: str = ""  # the directory named in the header

    @property
    def pred_dir(self) -> str:
        return os.path.join(self.backbone_dir, "predictions")

    @property
    def calls_dir(self) -> str:
        return os.path.join(self.backbone_dir, "calls")


def write_report(backbone_dir: str, out_path: str, plan: Union[str, dict, None] = None,
                 evaluation=None, timings: Union[str, dict, list, None] = None,
                 regions: Optional[Iterable[Union[str, Region]]] = None, *, overwrite: bool = False,
                 region_width: int = 20_000, gene_evaluation=None, truth_genes: Optional[str] = None,
                 command: Optional[str] = None, location: Optional[str] = None) -> str:
    """Write the HTML report of ``backbone_dir`` (``OUTDIR/<backbone>``) to ``out_path``.

    Args:
        backbone_dir: holds ``predictions/`` (for metadata and the track plots),
            ``calls/`` (``summary.json`` and ``<feature>.bed.gz`` from
            :func:`genoseg.calls.call_dataset`) and ``genes/`` (:mod:`genoseg.genes`);
            any may be missing (the section says so).
        out_path: HTML file to write (atomically).
        plan: plan.json path or dict: described in words under "What ran", its
            ``skipped`` list (dicts, e.g. contig/start/end/reason) under "Skipped".
        evaluation: TSV path or DataFrame (e.g. from ``genoseg evaluate``: feature,
            precision, recall, f1, ...), shown as a table.
        timings: JSON path, ``{step: seconds}``, a list of ``{step, seconds}`` or
            ``{"steps": [...], "command": ..., "demo_model": ..., "device": ...}``.
        regions: ``"chrom:start-end"`` strings (1-based closed) or ``(chrom, start0, end0)``
            tuples; default: the 3 windows of ``region_width`` bp with the most calls.
        overwrite: replace an existing ``out_path`` (else GenosegError).
        gene_evaluation: gene-level table (TSV path or DataFrame from
            :func:`genoseg.evaluate.compare_gene_models`).
        truth_genes: reference gene models GFF3, drawn under the decoded genes.
        command: the command line of the run (default: ``timings["command"]``).
        location: directory named in the report's header (default ``backbone_dir``;
            ``annotate`` writes into a staging directory and names the final one).

    Returns:
        ``out_path``.
    """
    run = _load_run(backbone_dir, plan, evaluation, timings, gene_evaluation, truth_genes, command, region_width)
    run.location = location or backbone_dir
    regions = [parse_region(r) if isinstance(r, str) else tuple(r) for r in (regions or [])]
    from .outputs import check_absent

    check_absent(out_path, overwrite)
    for c, _a, b in regions:
        run.sizes[c] = max(run.sizes.get(c, 0), b)
    from . import report_genes

    parts = [_title(run), _demo_banner(run), _summary_block(run), _command_block(run), _what_ran(run),
             _skipped_section(run), _calls_section(run), _tracks_section(run, regions, region_width),
             report_genes.genes_section(run.genes, run.gene_evaluation), _evaluation_section(run),
             _timings_section(run)]
    doc = ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
           f"<title>genoseg report — {esc(run.backbone)}</title><style>{CSS}</style></head><body>\n"
           + "\n".join(p for p in parts if p) + "\n</body></html>\n")
    with atomic_path(out_path, overwrite=overwrite) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(doc)
    log.info("wrote report %s (%d KB)", out_path, len(doc) // 1024)
    return out_path


def _load_run(backbone_dir, plan, evaluation, timings, gene_evaluation, truth_genes, command,
              region_width) -> _Run:
    """Read everything the sections need (user errors before any writing)."""
    if not os.path.isdir(backbone_dir):
        raise GenosegError(f"output directory {backbone_dir} does not exist")
    if int(region_width) < 1:
        raise GenosegError(f"--region-width must be a positive number of bp, got {region_width}")
    plan = _load_json(plan, "plan")
    timings = _load_json(timings, "timings")
    evaluation = _load_evaluation(evaluation)
    gene_evaluation = _load_evaluation(gene_evaluation)
    pred_dir = os.path.join(backbone_dir, "predictions")
    calls_dir = os.path.join(backbone_dir, "calls")
    meta, contigs = {}, []
    if os.path.isdir(pred_dir):
        try:
            meta = store.read_metadata(pred_dir) or {}
            contigs = list(store.list_contigs(pred_dir))
        except Exception as exc:  # report what we can
            log.warning("cannot read prediction metadata in %s: %s", pred_dir, exc)
    from . import report_genes
    from .calls import read_summary

    summary = read_summary(calls_dir) if os.path.isdir(calls_dir) else None
    features = list(meta.get("features") or (summary or {}).get("features", {}).keys())
    calls = _calls_table(calls_dir, features, region_width) if os.path.isdir(calls_dir) else {}
    predicted = dict((summary or {}).get("contigs", {}))
    sizes: dict[str, int] = {c: 0 for c in contigs or predicted}
    for st in calls.values():
        for c, end in st.ends.items():
            sizes[c] = max(sizes.get(c, 0), end)
    backbone = (meta.get("backbone") or (summary or {}).get("backbone")
                or os.path.basename(os.path.normpath(backbone_dir)))
    if command is None and isinstance(timings, dict):
        command = timings.get("command")
    return _Run(backbone_dir=backbone_dir, backbone=backbone, meta=meta, contigs=contigs, summary=summary,
                features=features, colors={f: PALETTE[i % len(PALETTE)] for i, f in enumerate(features)},
                calls=calls, predicted=predicted, total_bases=int(sum(predicted.values())), sizes=sizes,
                plan=plan, timings=timings, evaluation=evaluation, gene_evaluation=gene_evaluation,
                genes=report_genes.load_gene_models(os.path.join(backbone_dir, "genes")),
                truth_genes=report_genes.load_truth(truth_genes), command=command)


# ------------------------------------------------------------------------- sections
def _title(run: _Run) -> str:
    return (f"<h1>genoseg report — {esc(run.backbone)}</h1>"
            f'<p class="sub">{esc(os.path.abspath(run.location or run.backbone_dir))} · generated '
            f'{esc(datetime.datetime.now().strftime("%Y-%m-%d %H:%M"))}</p>')


def _is_demo(run: _Run) -> bool:
    """Whether the bundled demonstration model made the predictions (annotate records
    it in timings.json; a plan names the model directory)."""
    if isinstance(run.timings, dict) and run.timings.get("demo_model"):
        return True
    model = run.plan.get("model") if isinstance(run.plan, dict) else None
    return bool(model) and os.path.basename(os.path.normpath(str(model))) == "demo_model"


def _demo_banner(run: _Run) -> str:
    if not _is_demo(run):
        return ""
    return ('<div class="banner"><b>Demonstration model.</b> These predictions come from the small model '
            "bundled with genoseg (assets/demo_model), trained only on synthetic genomes from "
            "<code>genoseg simulate</code>. They are meaningless for a real genome: use the published "
            "SegmentNT / SegmentEnformer / SegmentBorzoi weights (<code>genoseg fetch-model</code>, "
            "<code>--model</code>).</div>")


def _total_seconds(timings) -> Optional[float]:
    if isinstance(timings, dict) and "total_seconds" in timings:
        return float(timings["total_seconds"])
    rows = _timings_rows(timings.get("steps", timings) if isinstance(timings, dict) else timings) if timings else []
    return sum(v for _, v in rows) if rows else None


def _mean_f1(evaluation) -> Optional[float]:
    if evaluation is None or "f1" not in evaluation:
        return None
    if "feature" in evaluation and (evaluation["feature"] == "mean").any():
        return float(evaluation.loc[evaluation["feature"] == "mean", "f1"].iloc[0])
    scored = evaluation
    if {"in_truth", "called"} <= set(evaluation.columns):
        scored = evaluation[evaluation["in_truth"].astype(bool) & evaluation["called"].astype(bool)]
    return float(scored["f1"].mean()) if len(scored) else None


def _summary_block(run: _Run) -> str:
    """Genome, model, device, dtype, time, bases predicted, scores: the run at a glance."""
    plan = run.plan if isinstance(run.plan, dict) else {}
    timings = run.timings if isinstance(run.timings, dict) else {}
    genome = plan.get("genome") or (os.path.basename(str(plan["fasta"])) if plan.get("fasta") else "unknown")
    model = plan.get("model") or run.backbone
    model = f"{model} ({run.backbone}{', bundled demonstration model' if _is_demo(run) else ''})"
    seconds = _total_seconds(run.timings)
    rows = {"genome": genome, "model": model,
            "device": _device(run) or timings.get("device") or plan.get("device") or "unknown",
            "compute dtype": run.meta.get("compute_dtype") or "unknown",
            "time": f"{seconds:,.1f} s" if seconds is not None else "unknown",
            "bases predicted": f"{run.total_bases:,} ({_fmt_bp(run.total_bases)})" if run.total_bases else "unknown"}
    f1 = _mean_f1(run.evaluation)
    if f1 is not None:
        rows["mean F1 (per-feature calls)"] = f"{f1:.3f}"
    if run.genes is not None:
        rows["gene models"] = run.genes.headline()
    if run.gene_evaluation is not None:
        from .report_genes import gene_scores_line

        rows["gene models vs truth"] = gene_scores_line(run.gene_evaluation)
    return '<h2>Summary</h2><table class="kv summary">' + "".join(
        f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in rows.items()) + "</table>"


def _device(run: _Run) -> Optional[str]:
    """The device(s) that predicted: ``devices`` of ``_genoseg.json`` (collect gathers
    them from the chunk footers), else the first file's footer (datasets collected
    before ``devices`` was recorded)."""
    if run.meta.get("devices"):
        return "; ".join(map(str, run.meta["devices"]))
    if run.meta.get("device"):
        return str(run.meta["device"])
    try:
        return store.file_metadata(store.contig_files(run.pred_dir, run.contigs[0])[0]).get("device")
    except Exception:  # no predictions, or an older layout: the summary says "unknown"
        return None


def _command_block(run: _Run) -> str:
    if not run.command:
        return ""
    return f'<p class="sub">Command line:</p><pre class="cmd">{esc(run.command)}</pre>'


def plan_in_words(plan: Mapping[str, Any]) -> list[str]:
    """Sentences describing a plan.json for people (the file keeps every detail)."""
    out = []
    genome = plan.get("fasta") or plan.get("genome")
    contigs = plan.get("contigs") if isinstance(plan.get("contigs"), list) else []
    if genome:
        size = sum(int(c.get("length", 0)) for c in contigs if isinstance(c, dict))
        out.append(f"Genome {genome}" + (f": {len(contigs):,} contig(s), {size:,} bp planned." if contigs else "."))
    if plan.get("window_length"):
        text = f"Windows of {int(plan['window_length']):,} bp"
        if plan.get("backbone"):
            text += f" for {plan['backbone']}"
        if plan.get("overlap") is not None:
            text += f", overlapping by {100 * float(plan['overlap']):.0f} % of their output span"
        out.append(text + ".")
    shorter = [int(w) for w in plan.get("window_lengths") or [] if int(w) != int(plan.get("window_length") or 0)]
    if shorter:
        out.append(f"Runs of bases shorter than a window get windows of {', '.join(f'{w:,}' for w in shorter)} bp "
                   f"(shortest {int(plan.get('min_window_length') or min(shorter)):,} bp).")
    if plan.get("n_windows") is not None:
        text = f"{int(plan['n_windows']):,} windows"
        if plan.get("n_chunks") is not None:
            text += f" in {int(plan['n_chunks']):,} chunk(s)"
        if plan.get("windows_per_chunk"):
            text += f" of up to {int(plan['windows_per_chunk']):,} windows"
        out.append(text + ".")
    sel = plan.get("selection") if isinstance(plan.get("selection"), dict) else {}
    if sel:
        if sel.get("contigs"):
            how = f"the contigs given ({', '.join(map(str, sel['contigs']))})"
        elif sel.get("contig_regex"):
            how = f"contigs matching {sel['contig_regex']!r}"
        else:
            how = "primary chromosomes (default selection)"
        min_len = int(sel.get("min_contig_length") or 1)
        out.append(f"Contigs: {how}" + (f", at least {min_len:,} bp." if min_len > 1 else "."))
    if plan.get("plan_id"):
        out.append(f"Plan {plan['plan_id']}" + (f", genoseg {plan['genoseg_version']}." if plan.get("genoseg_version")
                                                 else "."))
    return out


#: Plan keys described by :func:`plan_in_words` or by their own sections.
_PLAN_DESCRIBED = {"fasta", "genome", "contigs", "window_length", "backbone", "overlap", "window_lengths",
                   "min_window_length", "n_windows", "n_chunks", "windows_per_chunk", "selection", "plan_id",
                   "genoseg_version", "skipped", "skipped_regions", "skipped_contigs", "output_spans", "steps"}


def _what_ran(run: _Run) -> str:
    H = ["<h2>What ran</h2>"]
    info = {"backbone": run.backbone}
    for k in ("version", "encoding", "scale"):
        if k in run.meta:
            info[f"predictions {k}"] = run.meta[k]
    if run.features:
        info["features"] = ", ".join(run.features)
    if run.contigs:
        info["contigs with predictions"] = f"{len(run.contigs):,}"
    if run.total_bases:
        info["bases with a prediction"] = f"{run.total_bases:,} ({_fmt_bp(run.total_bases)})"
    H.append(_kv_table(info))
    plan = run.plan
    if plan is not None:
        if not isinstance(plan, dict):
            plan = {"plan": plan}
        words = plan_in_words(plan)
        if words:
            H.append("<h3>Plan</h3><ul>" + "".join(f"<li>{esc(w)}</li>" for w in words) + "</ul>")
        rest = {k: v for k, v in plan.items() if k not in _PLAN_DESCRIBED and not isinstance(v, (dict, list))}
        if rest:
            H.append(_kv_table(rest))
        contig_rows = plan.get("contigs")
        if contig_rows and all(isinstance(c, dict) for c in contig_rows):
            H.append("<h3>Contigs</h3>" + _records_table(contig_rows))
    if run.summary:
        rows = [{"feature": f, "high": v["params"]["high"], "low": v["params"]["low"],
                 "min length (bp)": v["params"]["min_length"], "merge gap (bp)": v["params"]["merge_gap"]}
                for f, v in run.summary["features"].items()]
        H.append("<h3>Calling parameters</h3>" + _records_table(rows))
    return "".join(H)


def _skipped_section(run: _Run) -> str:
    H = ["<h2>Skipped</h2>"]
    skipped = run.plan.get("skipped") if isinstance(run.plan, dict) else None
    if skipped is None:
        H.append('<p class="note">No plan given: nothing is known about skipped regions.</p>')
    elif not skipped:
        H.append("<p>Nothing was skipped.</p>")
    else:
        if all(isinstance(x, dict) and "start" in x and "end" in x for x in skipped):
            try:
                bp = sum(int(x["end"]) - int(x["start"]) for x in skipped)
                H.append(f"<p>{len(skipped):,} region(s), {bp:,} bp in total.</p>")
            except (TypeError, ValueError):
                pass
        H.append(_records_table(skipped))
    return "".join(H)


def _calls_section(run: _Run) -> str:
    H = ["<h2>Calls per feature</h2>"]
    calls, features, colors = run.calls, run.features, run.colors
    if not run.summary and not calls:
        H.append(f'<p class="warn">No calls found in {esc(run.calls_dir)}.</p>')
        return "".join(H)
    denom = run.total_bases or None
    maxbp = max([st.bp for st in calls.values()] + [1])
    body = []
    for f in features:
        if f not in calls:
            continue
        st = calls[f]
        bp = st.bp
        pct = f"{100 * bp / denom:.3f}%" if denom else "–"
        med = f"{int(st.median_length()):,}" if st.count else "–"
        ms = f"{st.score_sum / st.count / 1000:.2f}" if st.count else "–"
        body.append(f'<tr><td><span class="sw" style="background:{colors[f]}"></span>{esc(f)}</td>'
                    f'<td class="n">{st.count:,}</td><td class="n">{bp:,}</td><td class="n">'
                    f'<span class="bar" style="width:{80 * bp / maxbp:.0f}px"></span>{pct}</td>'
                    f'<td class="n">{med}</td><td class="n">{ms}</td></tr>')
    H.append("<table><tr><th>feature</th><th>calls</th><th>bp covered</th><th>% of predicted bases</th>"
             "<th>median length (bp)</th><th>mean score</th></tr>" + "".join(body) + "</table>")
    H.append('<p class="note">Coverage = called bases / bases with a prediction. Score = mean probability '
             'over the called bases.</p>')
    H.append("<h3>Length distributions</h3><div class=grid>")
    for f in features:
        if f in calls and calls[f].count:
            L, k = calls[f].lengths()
            H.append(f"<figure>{svg_histogram(L, colors[f], weights=k)}<figcaption>{esc(f)} — "
                     f"{calls[f].count:,} calls, log-scaled length bins</figcaption></figure>")
    H.append("</div>")
    return "".join(H)


def _tracks_section(run: _Run, regions: list, region_width: int) -> str:
    from . import report_genes

    H = ["<h2>Probability tracks</h2>"]
    features = run.features
    if not regions and run.calls:
        windows: dict[tuple[str, int], int] = {}
        for st in run.calls.values():
            for key, k in st.windows.items():
                windows[key] = windows.get(key, 0) + k
        regions = default_regions(windows, run.sizes, width=region_width)
        if regions:
            H.append('<p class="note">Regions with the most calls (all features).</p>')
    if not regions:
        H.append('<p class="note">No region to show (no calls and no --region).</p>')
        return "".join(H)
    if not os.path.isdir(run.pred_dir) or not features:
        H.append(f'<p class="warn">No predictions in {esc(run.pred_dir)}: tracks cannot be drawn.</p>')
        return "".join(H)
    allf = list(run.meta.get("features", features))
    thr = {f: v["params"]["high"] for f, v in (run.summary or {}).get("features", {}).items()}
    for reg in regions:
        c, a, b = reg
        pos, probs = _region_probs(run.pred_dir, reg, len(allf))
        probs = probs[:, [allf.index(f) for f in features]] if len(pos) else np.zeros((0, len(features)))
        H.append(f"<h3>{esc(c)}:{a + 1:,}-{b:,} ({_fmt_bp(b - a)})</h3>")
        if not len(pos):
            H.append('<p class="note">No predictions in this region.</p>')
        rows = report_genes.gene_rows(reg, run.genes, run.truth_genes)
        H.append(svg_tracks(reg, features, pos, probs, _region_calls(run.calls_dir, features, reg), run.colors,
                            thresholds=thr, gene_rows=rows))
    return "".join(H)


def _evaluation_section(run: _Run) -> str:
    if run.evaluation is None:
        return ""
    return ("<h2>Evaluation</h2>" + _df_table(run.evaluation)
            + '<p class="note">Base-level precision, recall and F1 per feature against the truth annotation.</p>')


def _timings_section(run: _Run) -> str:
    timings = run.timings
    if timings is None:
        return ""
    H = ["<h2>Timings</h2>"]
    rows = _timings_rows(timings.get("steps", timings) if isinstance(timings, dict) and "steps" in timings
                         else timings)
    if rows:
        total = sum(v for _, v in rows)
        H.append(svg_bars(rows))
        H.append(_records_table([{"step": k, "seconds": round(v, 2)} for k, v in rows]
                                + [{"step": "total", "seconds": round(total, 2)}]))
        if run.total_bases and total > 0:
            H.append(f'<p class="note">{run.total_bases / total:,.0f} bases/s over all steps.</p>')
    else:
        H.append('<p class="note">Timings given but none could be read.</p>')
    return "".join(H)
