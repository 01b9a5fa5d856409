"""``genoseg collect``: put the chunk files of one plan into ``OUTDIR/<backbone>/predictions/``.

Nothing is re-encoded: after checking, from the Parquet footers only, that every chunk
of the plan is there exactly once, complete, made from this plan with the same settings,
the files are hard-linked (copied across file systems) unchanged to
``part-NNNNN.parquet`` and indexed in ``_genoseg.json`` (see :mod:`genoseg.store`).
"""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("collect", help="put chunk predictions into the Parquet dataset (no re-encoding)",
                       description=__doc__)
    p.add_argument("--plan", required=True, help="PLAN/plan.json")
    p.add_argument("--chunks", required=True, nargs="+", help="every chunk's Parquet file (genoseg predict --out)")
    p.add_argument("--outdir", required=True, help="output directory")
    p.add_argument("--overwrite", action="store_true", help="replace an existing predictions dataset")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..store import dataset_dir, write_dataset
    from ..windows import read_plan

    plan = read_plan(args.plan)
    write_dataset(dataset_dir(args.outdir, plan["backbone"]), plan, args.chunks, overwrite=args.overwrite)
    return 0
