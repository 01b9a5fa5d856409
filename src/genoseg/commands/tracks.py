"""``genoseg tracks``: one bigWig of per-base probabilities per feature.

Header: the contigs of --fai (or of --fasta's index) in that order; without either, the
contigs of the predictions with their last predicted base as length. Bases without a
prediction are left empty.
"""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("tracks", help="write one bigWig per feature from a prediction dataset",
                       description=__doc__)
    p.add_argument("--predictions", required=True, help="prediction dataset: OUTDIR/<backbone>/predictions")
    p.add_argument("--outdir", required=True, help="output directory for <feature>.bw")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--fai", default=None, help="FASTA index (.fai) giving contig order and lengths")
    g.add_argument("--fasta", default=None, help="FASTA (its .fai is used, built if missing)")
    p.add_argument("--features", default=None, help="comma-separated subset of features (default: all)")
    p.add_argument("--workers", type=int, default=1, help="processes writing bigWigs in parallel (default 1)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --outdir")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..tracks import fasta_sizes, read_fai, write_tracks

    sizes = read_fai(args.fai) if args.fai else fasta_sizes(args.fasta) if args.fasta else None
    features = [f.strip() for f in args.features.split(",") if f.strip()] if args.features else None
    write_tracks(args.predictions, args.outdir, sizes, overwrite=args.overwrite, features=features,
                 workers=args.workers)
    return 0
