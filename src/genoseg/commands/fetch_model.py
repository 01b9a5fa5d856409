"""``genoseg fetch-model``: download a published model's ``jax_model/`` files.

Downloads ``jax_model/`` of ``InstaDeepAI/<backbone>`` (or ``--repo``) at ``--revision``
from a Hugging Face compatible hub into ``--outdir`` (``OUTDIR/jax_model/...``, the
layout ``--model`` expects elsewhere), plus ``OUTDIR/fetch.json`` recording the source,
sizes and SHA-256 sums. Files are moved into place only when complete. Set ``HF_TOKEN``
for gated or private repositories and ``HF_ENDPOINT`` (or ``--endpoint``) for a mirror.
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
    p.add_argument("--outdir", required=True, help="model directory to create (gets jax_model/ and fetch.json)")
    p.add_argument("--revision", default=hub.DEFAULT_REVISION,
                   help="branch, tag or commit of the repository (default: %(default)s; pin a commit for reproducibility)")
    p.add_argument("--endpoint", default=None,
                   help=f"hub base URL (default: $HF_ENDPOINT or {hub.DEFAULT_ENDPOINT})")
    p.add_argument("--repo", default=None, help="repository id (default: InstaDeepAI/<backbone>)")
    p.add_argument("--timeout", type=float, default=60.0, help="network timeout in seconds (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="download again even if the files are already there")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = hub.download_model(args.backbone, args.outdir, revision=args.revision, endpoint=args.endpoint,
                             repo=args.repo, timeout=args.timeout, force=args.force)
    print(out)
    return 0
