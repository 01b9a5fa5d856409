"""``genoseg plan``: validate a FASTA, lay out windows and cut them into chunks.

Writes ``OUTDIR/plan.json`` and ``OUTDIR/chunks/chunk_NNNNN.json`` (see
``genoseg.windows``), and with --stage-sequences each chunk's sequence
(``chunks/chunk_NNNNN.fa.gz`` + .fai/.gzi) for ``genoseg predict --sequence``. Needs no
model weights: window geometry comes from the backbone table, refined by the model
directory's small config files when ``--model`` is given.

Task size: chunks hold about --chunk-seconds of model time each (default 600 s: 32
predict tasks for hg38 with SegmentNT), or --target-chunks equal parts, or
--windows-per-chunk windows. Times are per backbone, measured on one H200 in float32
(SegmentNT 0.092 s per 30 kb window, SegmentEnformer 0.021 s, SegmentBorzoi 0.039 s;
shorter windows less): give your GPU's figure with --seconds-per-window.
"""

from __future__ import annotations

import argparse


def add_index_options(p) -> None:
    """``--fai``/``--gzi``: a FASTA index kept elsewhere (read-only reference directories)."""
    p.add_argument("--fai", default=None,
                   help="the FASTA's .fai index, when it is not beside the FASTA (default: FASTA.fai; built when "
                        "missing, beside the FASTA or, in a read-only directory, in the output's work area)")
    p.add_argument("--gzi", default=None, help="the .gzi index of a bgzipped FASTA given with --fai")


def add_plan_options(p, with_model: bool = True, default_sizing: str = "chunk-seconds") -> None:
    """Layout, contig selection and task-size options (shared with ``annotate``);
    ``default_sizing`` names the default shown in the help."""
    from ..windows import DEFAULT_CHUNK_SECONDS, DEFAULT_OVERLAP, DEFAULT_WINDOWS_PER_CHUNK, MAX_OVERLAP

    g = p.add_argument_group("layout")
    if with_model:
        g.add_argument("--backbone", default=None, help="backbone (default: inferred from --model)")
    g.add_argument("--window-length", type=int, default=None,
                   help="input length in bases, a positive multiple of the model's (default: the model's / backbone's)")
    g.add_argument("--overlap", type=float, default=DEFAULT_OVERLAP,
                   help=f"fraction of a window's output span shared with the next window, 0 to {MAX_OVERLAP} "
                        f"(default {DEFAULT_OVERLAP})")
    g.add_argument("--contigs", default=None, help="comma-separated contig names (default: primary chromosomes)")
    g.add_argument("--contig-regex", default=None, help="use contigs whose name matches this regular expression")
    g.add_argument("--min-contig-length", type=int, default=1, help="leave out shorter contigs")
    t = p.add_argument_group("task size (one of --chunk-seconds, --target-chunks, --windows-per-chunk)")
    x = t.add_mutually_exclusive_group()
    default = {"chunk-seconds": f" (default {DEFAULT_CHUNK_SECONDS:g})",
               "windows-per-chunk": f" (default {DEFAULT_WINDOWS_PER_CHUNK})"}
    x.add_argument("--chunk-seconds", type=float, default=None,
                   help="estimated model seconds per chunk, i.e. per predict task"
                        + (default["chunk-seconds"] if default_sizing == "chunk-seconds" else ""))
    x.add_argument("--target-chunks", type=int, default=None,
                   help="this many chunks of equal estimated work (fewer if there are fewer windows)")
    x.add_argument("--windows-per-chunk", type=int, default=None,
                   help="windows per chunk" + (default["windows-per-chunk"] if default_sizing == "windows-per-chunk" else ""))
    t.add_argument("--seconds-per-window", type=float, default=None,
                   help="model seconds of one --window-length window on your GPU (default: the backbone's "
                        "H100 float32 estimate, e.g. 0.1 for SegmentNT at 30 kb)")


def chunk_sizing(args: argparse.Namespace):
    """The :class:`~genoseg.windows.ChunkSizing` of the parsed options (plan's default:
    --chunk-seconds)."""
    from ..windows import ChunkSizing

    return ChunkSizing.from_options(args.windows_per_chunk, args.chunk_seconds, args.target_chunks,
                                    args.seconds_per_window)


def register(sub) -> None:
    p = sub.add_parser("plan", help="lay out windows over a genome and cut them into chunks", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fasta", required=True, help="genome FASTA (plain or bgzipped; .fai built if missing)")
    add_index_options(p)
    p.add_argument("--outdir", required=True, help="plan directory (plan.json, chunks/)")
    p.add_argument("--model", default=None, help="model directory (only its config files are read)")
    add_plan_options(p)
    p.add_argument("--stage-sequences", action="store_true",
                   help="also write each chunk's sequence (chunks/chunk_NNNNN.fa.gz, bgzipped + .fai/.gzi) "
                        "for `genoseg predict --sequence`, so a task stages only what it reads")
    p.add_argument("--overwrite", action="store_true", help="replace an existing plan")
    p.set_defaults(func=run)


def contig_list(value):
    return [c for c in value.split(",") if c] if value else None


def run(args: argparse.Namespace) -> int:
    from ..fasta import Fasta
    from ..outputs import check_writable_dir
    from ..windows import geometry_for, make_plan

    check_writable_dir(args.outdir, "--outdir")
    sizing = chunk_sizing(args)
    g = geometry_for(args.backbone, args.model, args.window_length, args.overlap)
    with Fasta(args.fasta, fai=args.fai, gzi=args.gzi) as fa:
        make_plan(fa, g, args.outdir, sizing, contig_list(args.contigs), args.contig_regex,
                  args.min_contig_length, args.overwrite, args.model, stage_sequences=args.stage_sequences)
    return 0
