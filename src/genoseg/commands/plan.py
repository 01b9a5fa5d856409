"""``genoseg plan``: validate a FASTA, lay out windows and cut them into chunks.

Writes ``OUTDIR/plan.json`` and ``OUTDIR/chunks/chunk_NNNNN.json`` (see
``genoseg.windows``). Needs no model weights: window geometry comes from the backbone
table, refined by the model directory's small config files when ``--model`` is given.
"""

from __future__ import annotations

import argparse


def add_index_options(p) -> None:
    """``--fai``/``--gzi``: a FASTA index kept elsewhere (read-only reference directories)."""
    p.add_argument("--fai", default=None,
                   help="the FASTA's .fai index, when it is not beside the FASTA (default: FASTA.fai; built when "
                        "missing, beside the FASTA or, in a read-only directory, in the output's work area)")
    p.add_argument("--gzi", default=None, help="the .gzi index of a bgzipped FASTA given with --fai")


def add_plan_options(p, with_model: bool = True) -> None:
    g = p.add_argument_group("layout")
    if with_model:
        g.add_argument("--backbone", default=None, help="backbone (default: inferred from --model)")
    g.add_argument("--window-length", type=int, default=None,
                   help="input length in bases (default: the model's / backbone's)")
    g.add_argument("--overlap", type=float, default=0.5,
                   help="fraction of a window's output span shared with the next window (default 0.5)")
    g.add_argument("--windows-per-chunk", type=int, default=64, help="windows per chunk (default 64)")
    g.add_argument("--contigs", default=None, help="comma-separated contig names (default: primary chromosomes)")
    g.add_argument("--contig-regex", default=None, help="use contigs whose name matches this regular expression")
    g.add_argument("--min-contig-length", type=int, default=1, help="leave out shorter contigs")


def register(sub) -> None:
    p = sub.add_parser("plan", help="lay out windows over a genome and cut them into chunks", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fasta", required=True, help="genome FASTA (plain or bgzipped; .fai built if missing)")
    add_index_options(p)
    p.add_argument("--outdir", required=True, help="plan directory (plan.json, chunks/)")
    p.add_argument("--model", default=None, help="model directory (only its config files are read)")
    add_plan_options(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing plan")
    p.set_defaults(func=run)


def contig_list(value):
    return [c for c in value.split(",") if c] if value else None


def run(args: argparse.Namespace) -> int:
    from ..fasta import Fasta
    from ..outputs import check_writable_dir
    from ..windows import geometry_for, make_plan

    check_writable_dir(args.outdir, "--outdir")
    g = geometry_for(args.backbone, args.model, args.window_length, args.overlap)
    with Fasta(args.fasta, fai=args.fai, gzi=args.gzi) as fa:
        make_plan(fa, g, args.outdir, args.windows_per_chunk, contig_list(args.contigs),
                  args.contig_regex, args.min_contig_length, args.overwrite, args.model)
    return 0
