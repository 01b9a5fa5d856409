"""``genoseg predict-seq``: probabilities for sequences given on the command line or in a FASTA."""

from __future__ import annotations

import argparse
import logging
import sys

from ..device import add_device_options

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("predict-seq", help="predict one or a few sequences and print a table",
                       description=__doc__)
    g = p.add_argument_group("input")
    g.add_argument("--model", required=True, help="model directory (published jax_model/ layout)")
    g.add_argument("--backbone", default=None, help="backbone name (default: inferred from the files)")
    g.add_argument("--sequence", action="append", default=[], help="a sequence (repeatable)")
    g.add_argument("--rescaling-factor", type=float, default=None, help="SegmentNT rotary rescaling")
    g.add_argument("--compute-dtype", default="float32", choices=["float32", "bfloat16"])
    o = p.add_argument_group("output")
    o.add_argument("--out", default="-", help="TSV output (default: stdout): seq, pos, one column per feature")
    add_device_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..device import log_cache_stats, setup_from_args
    from ..errors import GenosegError
    from ..models import load_model

    if not args.sequence:
        raise GenosegError("give at least one --sequence")
    setup_from_args(args)
    model = load_model(args.model, backbone=args.backbone, rescaling_factor=args.rescaling_factor,
                       compute_dtype=args.compute_dtype)
    probs = model.predict(args.sequence)
    start, _ = model.output_span(len(args.sequence[0]))
    out = sys.stdout if args.out == "-" else open(args.out, "w")
    try:
        out.write("seq\tpos\t" + "\t".join(model.features) + "\n")
        for i, rows in enumerate(probs):
            for j, row in enumerate(rows):
                out.write(f"{i}\t{start + j}\t" + "\t".join(f"{v:.4f}" for v in row) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    log.info("predicted %d sequence(s) of %d bases with %s", len(args.sequence), len(args.sequence[0]), model.backbone)
    log_cache_stats()
    return 0
