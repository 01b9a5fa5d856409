"""``genoseg annotate``: a whole genome run in one process (plan, predict, collect,
call, tracks, genes, report) into ``OUTDIR/<backbone>/``. Without --model it uses the bundled
demo model (``assets/demo_model``)."""

from __future__ import annotations

import argparse

from ..device import add_device_options
from ..parallel import add_threads_option
from .plan import add_index_options, add_plan_options, contig_list


def register(sub) -> None:
    p = sub.add_parser("annotate", help="run every step on a genome in one process", description=__doc__)
    p.add_argument("--fasta", required=True, help="genome FASTA (plain or bgzipped)")
    add_index_options(p)
    p.add_argument("--model", default=None, help="model directory (default: the bundled demo model)")
    p.add_argument("--outdir", required=True, help="output directory")
    add_plan_options(p, default_sizing="windows-per-chunk")
    p.add_argument("--batch-size", type=int, default=8, help="windows per device call (default 8)")
    p.add_argument("--compute-dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--reverse-complement", action="store_true", help="average with reverse-complement predictions")
    p.add_argument("--truth", default=None,
                   help="GFF3 of known elements (e.g. from genoseg simulate): score the calls "
                        "(OUTDIR/<backbone>/evaluation.tsv, shown in the report)")
    p.add_argument("--genes", action=argparse.BooleanOptionalAction, default=None,
                   help="decode gene models into OUTDIR/<backbone>/genes/ (default: on when the model predicts "
                        "exons/introns)")
    p.add_argument("--truth-genes", default=None,
                   help="reference gene models GFF3 (e.g. truth_genes.gff3 of genoseg simulate): score the gene "
                        "models (OUTDIR/<backbone>/evaluation_genes.tsv, shown in the report)")
    add_threads_option(p)
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing outputs (all of them, when the run succeeds); starts clean")
    p.add_argument("--no-resume", dest="resume", action="store_false",
                   help="discard the finished chunks of an interrupted run instead of reusing them")
    add_device_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import shlex

    from ..annotate import annotate
    from ..device import log_cache_stats, setup_from_args

    options = options_from_args(args)  # bad options are refused before the device is touched
    setup_from_args(args)
    options = dataclasses.replace(options, command_line=shlex.join(["genoseg", *args.argv]))
    annotate(args.fasta, args.outdir, args.model, options)
    log_cache_stats()
    return 0


def options_from_args(args: argparse.Namespace):
    """An :class:`~genoseg.annotate.AnnotateOptions` from the parsed command line: every
    field whose name is an argument's ``dest`` (so a new option needs only its field and
    its ``add_argument``)."""
    import dataclasses

    from ..annotate import AnnotateOptions

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(AnnotateOptions) if hasattr(args, f.name)}
    values["contigs"] = contig_list(args.contigs)
    return AnnotateOptions(**values)
