"""Download published model weights from a Hugging Face compatible hub (stdlib only).

The published checkpoints live in ``InstaDeepAI/<backbone>`` repositories; genoseg needs
only the JAX files under ``jax_model/``. Files are fetched with ``urllib`` from
``{endpoint}/{repo}/resolve/{revision}/{path}`` (the hub's plain download route), into a
temporary directory beside the destination, and moved into place only once every file
is complete, so an interrupted download never leaves a model directory that looks
usable. ``HF_TOKEN`` (when set) is sent as a bearer token to the hub host only, never to
the storage host a download is redirected to.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

from . import __version__
from .errors import GenosegError

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_REVISION = "main"
DEFAULT_OWNER = "InstaDeepAI"

_NT_FILES = ("jax_model/hyperparams.json", "jax_model/pytree_ckpt.joblib")
_TORSO_FILES = ("jax_model/params.joblib", "jax_model/state.joblib")

#: Files each published backbone needs, relative to the repository root.
MODEL_FILES: Dict[str, Tuple[str, ...]] = {
    "segment_nt": _NT_FILES,
    "segment_nt_multi_species": _NT_FILES,
    "segment_enformer": _TORSO_FILES,
    "segment_borzoi": _TORSO_FILES,
}

#: Written beside ``jax_model/``: where the files came from, sizes and SHA-256 sums.
PROVENANCE_FILE = "fetch.json"

_CHUNK = 1 << 20


def default_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT


def default_repo(backbone: str) -> str:
    return f"{DEFAULT_OWNER}/{backbone}"


def model_files(backbone: str) -> Tuple[str, ...]:
    try:
        return MODEL_FILES[backbone]
    except KeyError:
        known = ", ".join(MODEL_FILES)
        raise GenosegError(f"unknown backbone {backbone!r}; expected one of: {known}") from None


def file_url(endpoint: str, repo: str, revision: str, path: str) -> str:
    """``{endpoint}/{repo}/resolve/{revision}/{path}`` with each part quoted."""
    if not endpoint.startswith(("http://", "https://")):
        raise GenosegError(f"endpoint must be an http(s) URL, got {endpoint!r}")
    repo_q = "/".join(urllib.parse.quote(p, safe="") for p in repo.split("/"))
    rev_q = urllib.parse.quote(revision, safe="")
    path_q = urllib.parse.quote(path, safe="/")
    return f"{endpoint.rstrip('/')}/{repo_q}/resolve/{rev_q}/{path_q}"


def is_complete(outdir: os.PathLike, backbone: str) -> bool:
    """True when every file the backbone needs is present (non-empty) under ``outdir``."""
    root = Path(outdir)
    return all((root / f).is_file() and (root / f).stat().st_size > 0 for f in model_files(backbone))


class _AuthRedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follow redirects; re-send the token only when the target is the hub host itself."""

    def __init__(self, token: Optional[str], host: str):
        super().__init__()
        self.token = token
        self.host = host

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and self.token and urllib.parse.urlsplit(newurl).netloc == self.host:
            new.add_unredirected_header("Authorization", f"Bearer {self.token}")
        return new


def _http_error_message(exc: urllib.error.HTTPError, url: str, repo: str, revision: str) -> str:
    hint = ""
    if exc.code in (401, 403):
        hint = (" (authentication refused: set HF_TOKEN to a token that can read "
                f"{repo}, and accept the model's terms on the hub if it asks)")
    elif exc.code == 404:
        hint = f" (no such file: check the repository {repo!r}, --revision {revision!r} and --endpoint)"
    elif exc.code == 429:
        hint = " (rate limited: wait and retry, or set HF_TOKEN)"
    elif exc.code >= 500:
        hint = " (server error: retry later)"
    return f"download failed: HTTP {exc.code} {exc.reason} for {url}{hint}"


def _download(opener: urllib.request.OpenerDirector, url: str, dest: Path, timeout: float,
              token: Optional[str], progress: Optional[Callable[[str, int], None]]) -> Tuple[int, str]:
    req = urllib.request.Request(url, headers={"User-Agent": f"genoseg/{__version__}"})
    if token:
        req.add_unredirected_header("Authorization", f"Bearer {token}")
    sha = hashlib.sha256()
    written = 0
    with opener.open(req, timeout=timeout) as resp, open(dest, "wb") as out:
        expected = resp.headers.get("Content-Length")
        while True:
            block = resp.read(_CHUNK)
            if not block:
                break
            out.write(block)
            sha.update(block)
            written += len(block)
            if progress is not None:
                progress(url, written)
    if expected is not None and expected.isdigit() and int(expected) != written:
        raise GenosegError(f"download of {url} incomplete: got {written} of {expected} bytes")
    if written == 0:
        raise GenosegError(f"download of {url} returned an empty file")
    return written, sha.hexdigest()


def download_model(backbone: str, outdir: os.PathLike, revision: str = DEFAULT_REVISION,
                   endpoint: Optional[str] = None, repo: Optional[str] = None,
                   token: Optional[str] = None, timeout: float = 60.0, force: bool = False,
                   progress: Optional[Callable[[str, int], None]] = None) -> Path:
    """Fetch ``jax_model/`` of ``repo`` (default ``InstaDeepAI/<backbone>``) into ``outdir``.

    Returns ``outdir``. When every file is already there and ``force`` is false, nothing
    is downloaded. ``token`` defaults to ``$HF_TOKEN``, ``endpoint`` to ``$HF_ENDPOINT``
    or https://huggingface.co. Raises :class:`GenosegError` on any HTTP or network error;
    then ``outdir`` holds no new file.
    """
    files = model_files(backbone)
    endpoint = endpoint or default_endpoint()
    repo = repo or default_repo(backbone)
    token = token if token is not None else (os.environ.get("HF_TOKEN") or None)
    outdir = Path(outdir)
    if not revision:
        raise GenosegError("--revision must not be empty")

    if is_complete(outdir, backbone) and not force:
        log.info("%s already holds %s; nothing to download (use --force to replace)", outdir, backbone)
        return outdir

    host = urllib.parse.urlsplit(endpoint).netloc
    opener = urllib.request.build_opener(_AuthRedirectHandler(token, host))
    parent = outdir.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", suffix=".partial", dir=parent))
    try:
        record = {"repo": repo, "revision": revision, "endpoint": endpoint, "backbone": backbone,
                  "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": {}}
        for rel in files:
            url = file_url(endpoint, repo, revision, rel)
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            log.info("downloading %s", url)
            try:
                size, digest = _download(opener, url, dest, timeout, token, progress)
            except urllib.error.HTTPError as exc:
                raise GenosegError(_http_error_message(exc, url, repo, revision)) from None
            except urllib.error.URLError as exc:
                raise GenosegError(f"download failed: cannot reach {url}: {exc.reason}") from None
            except (TimeoutError, ConnectionError, OSError) as exc:
                if isinstance(exc, GenosegError):
                    raise
                raise GenosegError(f"download failed: {url}: {exc}") from None
            record["files"][rel] = {"bytes": size, "sha256": digest}
            log.info("%s: %d bytes, sha256 %s", rel, size, digest)
        (tmp / PROVENANCE_FILE).write_text(json.dumps(record, indent=2) + "\n")

        # Every file is complete: move each into place (one rename per file), the
        # provenance record last, so the final names only ever hold complete files.
        outdir.mkdir(parents=True, exist_ok=True)
        for rel in list(files) + [PROVENANCE_FILE]:
            final = outdir / rel
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / rel, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return outdir
