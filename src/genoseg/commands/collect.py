"""``genoseg collect``: join chunk predictions into ``OUTDIR/<backbone>/predictions/``."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("collect", help="join chunk predictions into the Parquet dataset", description=__doc__)
    p.add_argument("--plan", required=True, help="PLAN/plan.json")
    p.add_argument("--chunks", required=True, nargs="+", help="every chunk's Parquet file")
    p.add_argument("--outdir", required=True, help="output directory")
    p.add_argument("--overwrite", action="store_true", help="replace an existing predictions dataset")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..store import dataset_dir, write_dataset
    from ..windows import read_plan

    plan = read_plan(args.plan)
    write_dataset(dataset_dir(args.outdir, plan["backbone"]), plan, args.chunks, overwrite=args.overwrite)
    return 0
