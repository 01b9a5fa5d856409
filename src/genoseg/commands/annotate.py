"""``genoseg annotate``: a whole genome run in one process (plan, predict, collect,
call, tracks, report) into ``OUTDIR/<backbone>/``. Without --model it uses the bundled
demo model (``assets/demo_model``)."""

from __future__ import annotations

import argparse

from ..device import add_device_options
from .plan import add_plan_options, contig_list


def register(sub) -> None:
    p = sub.add_parser("annotate", help="run every step on a genome in one process", description=__doc__)
    p.add_argument("--fasta", required=True, help="genome FASTA (plain or bgzipped)")
    p.add_argument("--model", default=None, help="model directory (default: the bundled demo model)")
    p.add_argument("--outdir", required=True, help="output directory")
    add_plan_options(p)
    p.add_argument("--batch-size", type=int, default=8, help="windows per device call (default 8)")
    p.add_argument("--compute-dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--reverse-complement", action="store_true", help="average with reverse-complement predictions")
    p.add_argument("--truth", default=None,
                   help="GFF3 of known elements (e.g. from genoseg simulate): score the calls "
                        "(OUTDIR/<backbone>/evaluation.tsv, shown in the report)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_device_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..annotate import annotate
    from ..device import log_cache_stats, setup_from_args

    setup_from_args(args)
    annotate(args.fasta, args.outdir, args.model, backbone=args.backbone, window_length=args.window_length,
             overlap=args.overlap, windows_per_chunk=args.windows_per_chunk, batch_size=args.batch_size,
             compute_dtype=args.compute_dtype, reverse_complement=args.reverse_complement,
             contigs=contig_list(args.contigs), contig_regex=args.contig_regex,
             min_contig_length=args.min_contig_length, overwrite=args.overwrite, truth=args.truth)
    log_cache_stats()
    return 0
