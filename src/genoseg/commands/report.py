"""``genoseg report``: one self-contained HTML page (inline CSS/SVG) for a genome run.

Shows what ran, what was skipped, calls per feature (counts, bp, coverage, length
histograms), probability tracks over regions, and evaluation/timings when given.
"""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("report", help="write the HTML report of a run", description=__doc__)
    p.add_argument("--outdir", required=True, help="OUTDIR/<backbone> (with predictions/ and calls/)")
    p.add_argument("--out", required=True, help="HTML file to write, e.g. OUTDIR/<backbone>/report.html")
    p.add_argument("--plan", default=None, help="plan.json (inputs, parameters, skipped regions)")
    p.add_argument("--evaluation", default=None, help="evaluation TSV (genoseg evaluate)")
    p.add_argument("--timings", default=None, help="timings JSON ({step: seconds}, or annotate's timings.json)")
    p.add_argument("--gene-evaluation", default=None,
                   help="gene-level evaluation TSV (genoseg evaluate --genes ... --out-genes)")
    p.add_argument("--truth-genes", default=None, help="reference gene models GFF3, drawn under the decoded genes")
    p.add_argument("--region", action="append", default=[], metavar="CHROM:START-END",
                   help="region to plot, 1-based inclusive; repeatable (default: 3 windows with most calls)")
    p.add_argument("--region-width", type=int, default=20_000,
                   help="width in bp of the default regions (default 20000)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..report import write_report

    write_report(args.outdir, args.out, plan=args.plan, evaluation=args.evaluation, timings=args.timings,
                 regions=args.region or None, overwrite=args.overwrite, region_width=args.region_width,
                 gene_evaluation=args.gene_evaluation, truth_genes=args.truth_genes)
    return 0
