"""``genoseg convert-model``: a pickle-free copy of a model directory (safetensors).

Reads every ``SRC/jax_model/*.joblib`` with the restricted unpickler and writes it as
``DST/jax_model/*.safetensors`` (same arrays, bit for bit), copies the small json files,
and records the SHA-256 of source and result files with the genoseg version in
``DST/convert.json``. ``--model DST`` then loads the converted files, memory-mapped,
after checking them against that record (a changed file is refused); no pickle is
opened. ``DST`` may be ``SRC`` (conversion in place). The Nextflow pipeline converts
once per run, in the step that fetches or stages the weights.
"""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("convert-model", help="convert published joblib weights to safetensors (no pickle)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model directory in the published jax_model/ layout")
    p.add_argument("--outdir", required=True, help="converted model directory to create (may be --model itself)")
    p.add_argument("--backbone", default=None, help="backbone recorded in convert.json (default: inferred)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing converted directory")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..convert import convert_model

    record = convert_model(args.model, args.outdir, backbone=args.backbone, overwrite=args.overwrite)
    for rel, info in sorted(record["files"].items()):
        log.info("%s  %s (%d bytes)", info["sha256"], rel, info["bytes"])
    print(args.outdir)
    return 0
