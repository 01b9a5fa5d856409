"""The report's gene models: counts and distributions, the scores against a truth, and
gene diagrams drawn under the probability tracks (decoded genes, and the truth's).

Gene models are read from ``OUTDIR/<backbone>/genes/genes.gff3`` (:mod:`genoseg.genes`)
with :func:`genoseg.evaluate.read_gene_models`; coordinates 0-based half-open inside.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable, Optional

import numpy as np

from .report import _df_table, _fmt_bp, esc, svg_bars, svg_histogram

DECODED_COLOR, TRUTH_COLOR = "#1f4e79", "#2e7d32"


@dataclasses.dataclass
class GeneModels:
    """Exons and CDS segments (``chrom, start, end, strand, transcript, gene``) and the
    decoder's ``summary.json`` (empty for a reference annotation)."""

    exons: object
    cds: object
    summary: dict

    def headline(self) -> str:
        genes = self.exons["gene"].nunique()
        coding = self.cds["transcript"].nunique()
        tx = self.exons["transcript"].nunique()
        return (f"{genes:,} genes, {tx:,} transcripts ({coding:,} protein-coding, {tx - coding:,} non-coding)")


def _read(path: str, summary: Optional[dict] = None) -> GeneModels:
    from .evaluate import read_gene_models

    exons, cds = read_gene_models(path, with_cds=True)
    return GeneModels(exons=exons, cds=cds, summary=summary or {})


def load_gene_models(genes_dir: str) -> Optional[GeneModels]:
    """The decoded genes of a run (None when ``genes_dir`` has no ``genes.gff3``)."""
    gff = os.path.join(genes_dir, "genes.gff3")
    if not os.path.isfile(gff):
        return None
    summary_path = os.path.join(genes_dir, "summary.json")
    summary = json.load(open(summary_path)) if os.path.isfile(summary_path) else {}
    return _read(gff, summary)


def load_truth(path: Optional[str]) -> Optional[GeneModels]:
    return _read(path) if path else None


def gene_scores_line(table) -> str:
    """One line of the headline gene-level F1 scores (both strands, then Sn per strand)."""
    t = table.set_index(["level", "strand"])

    def f1(level):
        return f"{level} F1 {t.loc[(level, 'both'), 'f1']:.3f}" if (level, "both") in t.index else ""

    sn = {s: t.loc[("gene", s), "sensitivity"] for s in "+-" if ("gene", s) in t.index}
    per = "; gene sensitivity " + ", ".join(f"{s} strand {v:.3f}" for s, v in sn.items()) if sn else ""
    return ", ".join(x for x in (f1("exon"), f1("intron chain"), f1("gene")) if x) + per


# ----------------------------------------------------------------------- section
def genes_section(genes: Optional[GeneModels], evaluation) -> str:
    H = ["<h2>Gene models</h2>"]
    if genes is None:
        H.append('<p class="note">No gene models in this run (genes/ missing: <code>genoseg genes</code> '
                 "or <code>annotate --genes</code> writes them).</p>")
        return "".join(H)
    ex, cds = genes.exons, genes.cds
    H.append(f"<p>{esc(genes.headline())}; "
             f"{(ex.drop_duplicates('transcript')['strand'] == '+').sum():,} transcripts on the + strand, "
             f"{(ex.drop_duplicates('transcript')['strand'] == '-').sum():,} on the − strand.</p>")
    if genes.summary:
        s = genes.summary
        H.append(f'<p class="note">Decoded {s.get("region_bases", 0):,} of {s.get("bases", 0):,} predicted bases '
                 f'in {s.get("regions", 0):,} gene-bearing regions.</p>')
    if len(ex):
        per_gene = ex.groupby("gene")["transcript"].nunique().value_counts().sort_index()
        per_tx = ex.groupby("transcript").size()
        exon_rows = [(f"{k} exon{'s' if k > 1 else ''}", int((per_tx == k).sum())) for k in range(1, 10)]
        exon_rows.append(("10+ exons", int((per_tx >= 10).sum())))
        H.append("<h3>Transcripts per gene</h3>" + svg_bars(
            [(f"{k} transcript{'s' if k > 1 else ''}", int(v)) for k, v in per_gene.items()], unit="genes"))
        H.append("<h3>Exons per transcript</h3>" + svg_bars([r for r in exon_rows if r[1]], unit="transcripts"))
    if len(cds):
        lengths = cds.assign(n=cds["end"] - cds["start"]).groupby("transcript")["n"].sum().to_numpy()
        H.append("<h3>CDS length</h3><figure>" + svg_histogram(lengths, DECODED_COLOR, width=420)
                 + f"<figcaption>{len(lengths):,} coding sequences (stop codon included), median "
                 f"{_fmt_bp(float(np.median(lengths)))}, log-scaled length bins</figcaption></figure>")
    if evaluation is not None:
        H.append("<h3>Against the truth (gffcompare-style)</h3>" + _df_table(evaluation))
        H.append('<p class="note">Sensitivity = matched reference items / reference items; precision = matched '
                 "predicted / predicted. Exon: equal boundaries, except the outer end of a reference "
                 "transcript's first/last exon (within 100 bp); intron chain: every intron of a multi-exon "
                 "transcript exact; gene: a transcript of the gene matches. Strand + / − alone, and both.</p>")
    return "".join(H)


# -------------------------------------------------------------- gene diagrams
LANE = 18


def gene_rows(region, genes: Optional[GeneModels], truth: Optional[GeneModels]) -> list[tuple[str, Callable]]:
    """``(label, draw)`` rows of gene diagrams over ``region`` for
    :func:`genoseg.report.svg_tracks`: ``draw(y0, left, width, measure)`` returns the
    row's height (``measure``) or its SVG."""
    rows = []
    for label, models, color in (("genes (decoded)", genes, DECODED_COLOR), ("genes (truth)", truth, TRUTH_COLOR)):
        if models is not None:
            rows.append((label, _diagram(region, models, color)))
    return rows


def _diagram(region, models: GeneModels, color: str) -> Callable:
    contig, r0, r1 = region
    ex, cds = models.exons, models.cds
    ex = ex[(ex["chrom"] == contig) & (ex["end"] > r0) & (ex["start"] < r1)]
    cds = cds[(cds["chrom"] == contig) & (cds["end"] > r0) & (cds["start"] < r1)]
    spans = ex.groupby("transcript", sort=False).agg(start=("start", "min"), end=("end", "max"),
                                                    strand=("strand", "first")).sort_values("start")
    lanes: list[int] = []  # last end (bp) per lane
    lane_of = {}
    for tid, r in spans.iterrows():
        k = next((i for i, e in enumerate(lanes) if e + (r1 - r0) // 50 < r.start), len(lanes))
        if k == len(lanes):
            lanes.append(0)
        lanes[k] = r.end
        lane_of[tid] = k
    height = max(1, len(lanes)) * LANE

    def draw(y0: float, left: float, width: float, measure: bool):
        if measure:
            return height
        X = lambda v: left + (min(max(v, r0), r1) - r0) * width / max(r1 - r0, 1)  # noqa: E731
        out = [f'<rect x="{left}" y="{y0}" width="{width}" height="{height}" fill="#fcfcfc" stroke="#eee"/>']
        for tid, r in spans.iterrows():
            y = y0 + lane_of[tid] * LANE + LANE / 2
            a, b = X(r.start), X(r.end)
            out.append(f'<line x1="{a:.1f}" x2="{b:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{color}" stroke-width="1"/>')
            arrow = "›" if r.strand == "+" else "‹"
            for x in np.arange(a + 12, b - 6, 60):
                out.append(f'<text x="{x:.1f}" y="{y + 3.5:.1f}" font-size="10" fill="{color}" '
                           f'text-anchor="middle">{arrow}</text>')
            for e in ex[ex["transcript"] == tid].itertuples():
                out.append(f'<rect x="{X(e.start):.1f}" y="{y - 3:.1f}" width="{max(X(e.end) - X(e.start), 1):.1f}" '
                           f'height="6" fill="{color}" fill-opacity="0.55"/>')
            for c in cds[cds["transcript"] == tid].itertuples():
                out.append(f'<rect x="{X(c.start):.1f}" y="{y - 6:.1f}" width="{max(X(c.end) - X(c.start), 1):.1f}" '
                           f'height="12" fill="{color}"><title>{esc(tid)} ({r.strand})</title></rect>')
        return "".join(out)

    return draw
