"""``genoseg fetch-model``: published model weights (``jax_model/``) from Hugging Face.

Downloads ``jax_model/`` of ``InstaDeepAI/<backbone>`` (or ``--repo``) at ``--revision``
with the ``huggingface_hub`` client (its cache, resumable downloads, ``HF_TOKEN``,
``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_HOME``/``HF_HUB_CACHE`` apply), then places the
files into ``--outdir`` (``OUTDIR/jax_model/...``, the layout ``--model`` expects
elsewhere) only once every file is complete and matches the hub's checksum.
``OUTDIR/fetch.json`` records the repository, the revision, the commit it resolved to and
the SHA-256 of every file. The checkpoints are also converted to safetensors
(``OUTDIR/convert.json``, see ``genoseg convert-model``) unless ``--no-convert``.

Without internet (compute nodes): run this once on a machine that has it and pass the
folder (``--model DIR``; pipeline ``--model_dir``), or pre-populate the Hugging Face
cache and set ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import argparse
import logging

from .. import hub

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("fetch-model", help="download published model weights (jax_model/) from Hugging Face",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", required=True, choices=sorted(hub.MODEL_FILES),
                   help="which published model to fetch")
    p.add_argument("--outdir", required=True,
                   help="model directory to create (gets jax_model/, fetch.json and convert.json)")
    p.add_argument("--revision", default=hub.DEFAULT_REVISION,
                   help="branch, tag or commit of the repository (default: %(default)s; pin a commit for "
                        "reproducibility: the resolved commit is recorded in fetch.json either way)")
    p.add_argument("--endpoint", default=None,
                   help=f"hub base URL (default: $HF_ENDPOINT or {hub.DEFAULT_ENDPOINT})")
    p.add_argument("--repo", default=None, help="repository id (default: InstaDeepAI/<backbone>)")
    p.add_argument("--cache-dir", default=None,
                   help="Hugging Face cache to download into (default: the client's: $HF_HUB_CACHE, "
                        "$HF_HOME/hub or ~/.cache/huggingface/hub)")
    p.add_argument("--no-convert", dest="convert", action="store_false",
                   help="keep only the published joblib files (no safetensors copy)")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds to wait for the hub's answers (default: %(default)s)")
    p.add_argument("--force", action="store_true",
                   help="download again (bypassing the cache) even if the files are already there")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = hub.download_model(args.backbone, args.outdir, revision=args.revision, endpoint=args.endpoint,
                             repo=args.repo, cache_dir=args.cache_dir, force=args.force,
                             convert=args.convert, timeout=args.timeout)
    print(out)
    return 0
