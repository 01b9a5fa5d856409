"""``genoseg tracks``: one bigWig of per-base probabilities per feature.

Header: the contigs of --fai (or of --fasta's index) in that order; without either, the
contigs of the predictions with their last predicted base as length. Bases without a
prediction are left empty.
"""

from __future__ import annotations

import argparse
import logging

from ..parallel import add_threads_option

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("tracks", help="write one bigWig per feature from a prediction dataset",
                       description=__doc__)
    p.add_argument("--predictions", required=True, help="prediction dataset: OUTDIR/<backbone>/predictions")
    p.add_argument("--outdir", required=True, help="output directory for <feature>.bw")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--fai", default=None, help="FASTA index (.fai) giving contig order and lengths")
    g.add_argument("--fasta", default=None, help="FASTA (its .fai is used, built if missing)")
    p.add_argument("--features", default=None, help="comma-separated subset of features (default: all)")
    add_threads_option(p)
    p.add_argument("--workers", type=int, default=None, dest="workers", help=argparse.SUPPRESS)  # deprecated alias
    p.add_argument("--overwrite", action="store_true", help="replace an existing --outdir")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..parallel import check_threads
    from ..tracks import fasta_sizes, read_fai, write_tracks

    if args.workers is not None:
        log.warning("--workers is deprecated: use --threads")
        if args.threads is None:
            args.threads = args.workers
    threads = check_threads(args.threads, "--threads" if args.workers is None else "--workers")
    sizes = read_fai(args.fai) if args.fai else fasta_sizes(args.fasta) if args.fasta else None
    features = [f.strip() for f in args.features.split(",") if f.strip()] if args.features else None
    write_tracks(args.predictions, args.outdir, sizes, overwrite=args.overwrite, features=features,
                 threads=threads)
    return 0
