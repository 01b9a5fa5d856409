"""``genoseg predict``: per-base predictions for the bases one chunk owns (Parquet).

The log starts with the device the model runs on (``--device``; ``gpu`` never falls
back to the CPU). Exit statuses: 69 = ``--device gpu`` but no GPU is visible; 75
(EX_TEMPFAIL) = the accelerator ran out of memory while loading, compiling or
predicting: retry with a smaller ``--batch-size`` (the Nextflow pipeline does this
automatically).
"""

from __future__ import annotations

import argparse
import logging
import os

from ..device import EXIT_DEVICE_OOM, add_device_options, is_device_oom  # noqa: F401 - re-exported
from .plan import add_index_options

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("predict", help="predict one chunk of a plan", description=__doc__)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--fasta", help="the FASTA the plan was made from")
    src.add_argument("--sequence", help="instead of --fasta: the chunk's own sequence, chunks/chunk_NNNNN.fa.gz "
                                        "written by `genoseg plan --stage-sequences` (.fai/.gzi beside it)")
    add_index_options(p)
    p.add_argument("--model", required=True,
                   help="model directory (published jax_model/ layout, or converted by genoseg convert-model)")
    p.add_argument("--chunk", required=True, help="chunk file (PLAN/chunks/chunk_NNNNN.json)")
    p.add_argument("--out", required=True, help="output Parquet file")
    p.add_argument("--backbone", default=None, help="backbone (default: inferred from the files)")
    p.add_argument("--batch-size", type=int, default=8, help="windows per device call (default 8)")
    p.add_argument("--compute-dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--reverse-complement", action="store_true",
                   help="average with the reverse-complement prediction (2x compute)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    add_device_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..device import log_cache_stats, setup_from_args
    from ..fasta import Fasta
    from ..models import load_model
    from ..outputs import check_absent, check_writable_dir
    from ..predict import predict_chunk, read_chunk
    from ..staging import ChunkSequence

    check_absent(args.out, args.overwrite)
    check_writable_dir(os.path.dirname(os.path.abspath(args.out)), "--out's directory")
    chunk = read_chunk(args.chunk)
    # the sequence is opened (and checked against the chunk) before the weights load
    source = (ChunkSequence(args.sequence, chunk) if args.sequence
              else Fasta(args.fasta, check_duplicates=False, fai=args.fai, gzi=args.gzi))
    with source as fa:
        setup_from_args(args)  # before the weights: --device gpu without a GPU stops here
        model = load_model(args.model, backbone=args.backbone, compute_dtype=args.compute_dtype)
        predict_chunk(model, fa, chunk, args.out, batch_size=args.batch_size,
                      reverse_complement=args.reverse_complement, overwrite=args.overwrite)
    log_cache_stats()
    return 0
