"""``genoseg predict``: per-base predictions for the bases one chunk owns (Parquet).

Exit status 75 (EX_TEMPFAIL) means the accelerator ran out of memory: retry with a
smaller ``--batch-size`` (the Nextflow pipeline does this automatically).
"""

from __future__ import annotations

import argparse
import logging
import sys

from .plan import add_index_options

log = logging.getLogger(__name__)

EXIT_DEVICE_OOM = 75


def register(sub) -> None:
    p = sub.add_parser("predict", help="predict one chunk of a plan", description=__doc__)
    p.add_argument("--fasta", required=True, help="the FASTA the plan was made from")
    add_index_options(p)
    p.add_argument("--model", required=True, help="model directory (published jax_model/ layout)")
    p.add_argument("--chunk", required=True, help="chunk file (PLAN/chunks/chunk_NNNNN.json)")
    p.add_argument("--out", required=True, help="output Parquet file")
    p.add_argument("--backbone", default=None, help="backbone (default: inferred from the files)")
    p.add_argument("--batch-size", type=int, default=8, help="windows per device call (default 8)")
    p.add_argument("--compute-dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--reverse-complement", action="store_true",
                   help="average with the reverse-complement prediction (2x compute)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..fasta import Fasta
    from ..models import load_model
    from ..outputs import check_absent
    from ..predict import predict_chunk, read_chunk

    check_absent(args.out, args.overwrite)
    chunk = read_chunk(args.chunk)
    model = load_model(args.model, backbone=args.backbone, compute_dtype=args.compute_dtype)
    try:
        with Fasta(args.fasta, check_duplicates=False, fai=args.fai, gzi=args.gzi) as fa:
            predict_chunk(model, fa, chunk, args.out, batch_size=args.batch_size,
                          reverse_complement=args.reverse_complement, overwrite=args.overwrite)
    except Exception as exc:  # noqa: BLE001 - only device OOM is translated
        if not is_device_oom(exc):
            raise
        print(f"genoseg predict: error: out of accelerator memory with --batch-size {args.batch_size}; "
              f"retry with a smaller --batch-size (exit status {EXIT_DEVICE_OOM})", file=sys.stderr)
        log.debug("device OOM", exc_info=exc)
        return EXIT_DEVICE_OOM
    return 0


def is_device_oom(exc: BaseException) -> bool:
    """True for XLA's out-of-memory errors (``RESOURCE_EXHAUSTED``) on any backend."""
    text = str(exc)
    return "RESOURCE_EXHAUSTED" in text or "Out of memory" in text
