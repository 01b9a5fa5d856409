"""``genoseg evaluate``: score calls and gene models against a truth annotation.

Per feature (``--calls``): base-level precision, recall and F1 of the called intervals
against a GFF3 whose type column holds the model's feature names (``truth.gff3`` of
``genoseg simulate``).

Gene models (``--genes``): gffcompare-style sensitivity and precision at base, exon,
intron, intron-chain (transcript structure), transcript and gene level, for both
strands and each strand alone, against gene -> mRNA -> exon GFF3 (GENCODE, Ensembl, or
``truth_genes.gff3`` of ``genoseg simulate``).
"""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="score calls (per feature) and gene models (gffcompare-style) against a truth",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--truth", required=True,
                   help="truth GFF3: feature names as types for --calls (truth.gff3 of genoseg simulate); also "
                        "the gene models for --genes unless --truth-genes is given")
    p.add_argument("--calls", default=None, help="calls directory holding <feature>.bed.gz (genoseg call)")
    p.add_argument("--genes", default=None, help="predicted gene models GFF3 (genoseg genes: OUTDIR/genes.gff3)")
    p.add_argument("--truth-genes", default=None,
                   help="reference gene models GFF3/GTF (gene -> mRNA -> exon), e.g. truth_genes.gff3 of "
                        "genoseg simulate, GENCODE or Ensembl (default: --truth)")
    p.add_argument("--fai", default=None, help="FASTA index: clip intervals to the contigs, drop unknown contigs")
    p.add_argument("--features", default=None,
                   help="comma-separated features to evaluate (default: all in the truth or the calls)")
    p.add_argument("--end-slack", type=int, default=100,
                   help="bp the outer end of a reference transcript's first/last exon may differ by at exon level "
                        "(gffcompare -e; default 100)")
    p.add_argument("--out", default=None, help="write the per-feature table as TSV here (last row: mean F1)")
    p.add_argument("--out-genes", default=None, help="write the gene-level table as TSV here")
    p.add_argument("--overwrite", action="store_true", help="replace existing --out / --out-genes files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..errors import GenosegError
    from ..evaluate import evaluate_calls, evaluate_gene_models, format_gene_table, format_table
    from ..outputs import check_absent

    if not args.calls and not args.genes:
        raise GenosegError("nothing to score: give --calls (per-feature calls) and/or --genes (gene models GFF3)")
    if args.end_slack < 0:
        raise GenosegError(f"--end-slack must be >= 0, got {args.end_slack}")
    for path, given in ((args.out, args.calls), (args.out_genes, args.genes)):
        if path and not given:
            raise GenosegError(f"{'--out' if path == args.out else '--out-genes'} needs "
                               f"{'--calls' if path == args.out else '--genes'}")
        if path:
            check_absent(path, args.overwrite)
    if args.calls:
        features = [f for f in args.features.split(",") if f] if args.features else None
        if features is not None:
            check_features(features, args.calls, args.truth)
        df = evaluate_calls(args.truth, args.calls, features=features, fai=args.fai)
        sys.stdout.write(format_table(df))
        if args.out:
            write_feature_table(df, args.out, args.overwrite)
        if np.isnan(df.attrs["mean_f1"]):
            log.warning("no feature is both in the truth and called: mean F1 undefined")
    if args.genes:
        genes = evaluate_gene_models(args.truth_genes or args.truth, args.genes, fai=args.fai,
                                     end_slack=args.end_slack)
        sys.stdout.write(("\n" if args.calls else "") + "gene models (gffcompare-style; Sn = sensitivity, "
                         "Pr = precision; + / - = strand):\n" + format_gene_table(genes))
        if args.out_genes:
            write_gene_table(genes, args.out_genes, args.overwrite)
    return 0


def write_feature_table(df, path: str, overwrite: bool) -> None:
    """Per-feature TSV with a last row ``mean`` (its f1 = mean F1)."""
    import pandas as pd

    from ..outputs import atomic_path

    mean = pd.DataFrame([{"feature": "mean", "f1": df.attrs["mean_f1"]}])
    with atomic_path(path, overwrite=overwrite) as tmp:
        pd.concat([df, mean], ignore_index=True).to_csv(tmp, sep="\t", index=False, na_rep="NA", float_format="%.6f")
    log.info("wrote %s", path)


def write_gene_table(df, path: str, overwrite: bool) -> None:
    from ..outputs import atomic_path

    with atomic_path(path, overwrite=overwrite) as tmp:
        df.to_csv(tmp, sep="\t", index=False, na_rep="NA", float_format="%.6f")
    log.info("wrote %s", path)


def check_features(features: list, calls_dir: str, truth: str) -> None:
    """Refuse a ``--features`` name that is neither called nor in the truth (a typo),
    listing the names that are."""
    import os
    import urllib.parse

    from ..errors import GenosegError
    from ..evaluate import read_gff3

    if not features:
        raise GenosegError("--features: give one or more comma-separated feature names")
    called = sorted(urllib.parse.unquote(f[:-len(".bed.gz")]) for f in os.listdir(calls_dir)
                    if f.endswith(".bed.gz")) if os.path.isdir(calls_dir) else []
    known = set(called) | set(read_gff3(truth)["feature"])
    unknown = [f for f in features if f not in known]
    if unknown:
        raise GenosegError(f"--features: {', '.join(map(repr, unknown))} neither called in {calls_dir} nor in "
                           f"{truth}; called features: {', '.join(called) or 'none'}")
