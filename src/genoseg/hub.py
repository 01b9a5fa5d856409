"""Published model weights from the Hugging Face Hub, through the ``huggingface_hub`` client.

The published checkpoints live in ``InstaDeepAI/<backbone>`` repositories; genoseg needs
only ``jax_model/``. The client does the transfer, so what users already configure for
Hugging Face applies: the shared cache (``HF_HOME`` / ``HF_HUB_CACHE``, or
``--cache-dir``), ``HF_HUB_OFFLINE=1`` (use the cache only), resumable downloads,
``HF_TOKEN`` (or ``hf auth login``) for gated repositories, ``HF_ENDPOINT`` for mirrors.

:func:`download_model` then places the files into the model directory: built beside
it, every file checked against the checksum the hub gave for it (the cache names LFS
blobs by their SHA-256), and moved into place only when complete, so an interrupted run
never leaves a directory that looks usable. ``fetch.json`` records the repository, the
requested revision and the commit it resolved to, and the SHA-256 of every file. By
default the checkpoints are also converted to safetensors in place
(:mod:`genoseg.convert`), so that prediction tasks never unpickle.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Optional, Tuple

from . import __version__
from .errors import GenosegError

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_REVISION = "main"
DEFAULT_OWNER = "InstaDeepAI"
#: The only files fetched from a repository.
ALLOW_PATTERNS = ["jax_model/*"]

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

_COMMIT = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_NO_INTERNET_HINT = ("compute nodes often have no internet: fetch the weights once on a machine that has it "
                     "(genoseg fetch-model --outdir DIR) and pass DIR (--model; pipeline: --model_dir)")


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


def is_complete(outdir: os.PathLike, backbone: str) -> bool:
    """True when every file the backbone needs is present (non-empty) under ``outdir``
    and the provenance record is there (it is written last)."""
    root = Path(outdir)
    return (root / PROVENANCE_FILE).is_file() and all(
        (root / f).is_file() and (root / f).stat().st_size > 0 for f in model_files(backbone))


def offline() -> bool:
    """``HF_HUB_OFFLINE`` as the client understands it (read at call time)."""
    return os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}


def download_model(backbone: str, outdir: os.PathLike, revision: str = DEFAULT_REVISION,
                   endpoint: Optional[str] = None, repo: Optional[str] = None,
                   token: Optional[str] = None, cache_dir: Optional[str] = None, force: bool = False,
                   convert: bool = True, timeout: float = 10.0) -> Path:
    """Fetch ``jax_model/`` of ``repo`` (default ``InstaDeepAI/<backbone>``) into ``outdir``.

    Args:
        revision: branch, tag or commit; the commit it resolves to is recorded.
        endpoint: hub URL (default ``$HF_ENDPOINT`` or https://huggingface.co).
        token: default ``$HF_TOKEN`` or the token saved by ``hf auth login``.
        cache_dir: Hugging Face cache (default: the client's, ``$HF_HUB_CACHE``).
        force: download again (bypassing the cache) even when ``outdir`` is complete.
        convert: also write the safetensors copy and ``convert.json`` (no pickle later).
        timeout: seconds to wait for the hub's metadata answers.

    Returns ``outdir``. Raises :class:`GenosegError` with one clear line when the
    download fails; then ``outdir`` is unchanged.
    """
    files = model_files(backbone)
    repo = repo or default_repo(backbone)
    endpoint = (endpoint or default_endpoint()).rstrip("/")
    outdir = Path(outdir)
    if not revision:
        raise GenosegError("--revision must not be empty")
    if not endpoint.startswith(("http://", "https://")):
        raise GenosegError(f"endpoint must be an http(s) URL, got {endpoint!r}")

    if is_complete(outdir, backbone) and not force:
        log.info("%s already holds %s; nothing to download (use --force to fetch again)", outdir, backbone)
        if convert and not (outdir / "convert.json").is_file():
            from .convert import convert_model

            convert_model(str(outdir), str(outdir), backbone=backbone)
        return outdir

    snapshot = _snapshot(repo, revision, endpoint, token, cache_dir, force, timeout)
    commit = os.path.basename(os.path.normpath(snapshot))
    missing = [f for f in files if not os.path.isfile(os.path.join(snapshot, f))]
    if missing:
        raise GenosegError(f"{repo} at revision {revision!r} ({commit}) has no {', '.join(missing)}: "
                           f"not a published {backbone} repository? (check --repo and --backbone)")
    present = sorted(os.path.relpath(os.path.join(d, f), snapshot).replace(os.sep, "/")
                     for d, _, names in os.walk(os.path.join(snapshot, "jax_model")) for f in names)
    record = {"repo": repo, "revision": revision, "commit": commit if _COMMIT.fullmatch(commit) else None,
              "endpoint": endpoint, "backbone": backbone, "genoseg_version": __version__,
              "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": {}}

    outdir.resolve().parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", suffix=".partial", dir=outdir.resolve().parent))
    try:
        for rel in present:
            size, digest = _place(os.path.join(snapshot, rel), tmp / rel)
            record["files"][rel] = {"bytes": size, "sha256": digest}
            log.info("%s: %d bytes, sha256 %s", rel, size, digest)
        (tmp / PROVENANCE_FILE).write_text(json.dumps(record, indent=2) + "\n")
        if convert:
            from .convert import convert_model

            convert_model(str(tmp), str(tmp), backbone=backbone)
        _move_into_place(tmp, outdir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("%s@%s (commit %s) -> %s", repo, revision, commit, outdir)
    return outdir


def _snapshot(repo: str, revision: str, endpoint: str, token: Optional[str], cache_dir: Optional[str],
              force: bool, timeout: float) -> str:
    """The cached snapshot folder of ``repo@revision`` restricted to ``jax_model/``
    (``.../snapshots/<commit>``), downloading what the cache lacks."""
    from huggingface_hub import errors as hf_errors
    from huggingface_hub import snapshot_download as download  # imports the client's logging set-up
    from huggingface_hub.utils import disable_progress_bars

    if not sys.stderr.isatty():
        disable_progress_bars()  # no bars in batch logs
    hf_log = logging.getLogger("huggingface_hub")  # its own handler would print each warning twice
    for handler in [h for h in hf_log.handlers if type(h) is logging.StreamHandler]:
        hf_log.removeHandler(handler)
    if not log.isEnabledFor(logging.DEBUG):  # one INFO line per HTTP request otherwise
        for name in ("httpx2", "httpx", "httpcore2"):
            logging.getLogger(name).setLevel(logging.WARNING)
    where = f"{repo} (revision {revision!r}) from {endpoint}"
    try:
        return download(
            repo, revision=revision, allow_patterns=ALLOW_PATTERNS, cache_dir=cache_dir, endpoint=endpoint,
            token=token, force_download=force, local_files_only=offline(), etag_timeout=timeout,
            library_name="genoseg", library_version=__version__)
    except hf_errors.RevisionNotFoundError:
        raise GenosegError(f"download failed: no revision {revision!r} in {repo} on {endpoint} "
                           "(check --revision)") from None
    except hf_errors.GatedRepoError:
        raise GenosegError(f"download failed: {repo} is gated: accept its terms on the hub and set HF_TOKEN "
                           "to a token that can read it") from None
    except hf_errors.RepositoryNotFoundError:
        raise GenosegError(f"download failed: repository {repo} not found on {endpoint} (check --repo; a "
                           "private or gated one needs HF_TOKEN)") from None
    except hf_errors.LocalEntryNotFoundError as exc:
        if offline():
            raise GenosegError(f"HF_HUB_OFFLINE is set and {where.split(' from ')[0]} is not in the Hugging "
                               f"Face cache; {_NO_INTERNET_HINT}") from None
        raise GenosegError(f"download failed: cannot reach {where} ({_cause(exc)}); {_NO_INTERNET_HINT}") from None
    except hf_errors.HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        hint = {401: "authentication refused: set HF_TOKEN to a token that can read the repository",
                403: "access refused: set HF_TOKEN and accept the model's terms on the hub",
                429: "rate limited: wait and retry, or set HF_TOKEN"}.get(status, "")
        if not hint and status and status >= 500:
            hint = "server error: retry later"
        raise GenosegError(f"download failed: HTTP {status} for {where}" + (f" ({hint})" if hint else "")) from None
    except Exception as exc:  # noqa: BLE001 - network errors of whichever HTTP library the client uses
        if not _is_transfer_error(exc):
            raise
        raise GenosegError(f"download failed: {where}: {_cause(exc)} (run again to resume; "
                           f"{_NO_INTERNET_HINT})") from None


def _is_transfer_error(exc: BaseException) -> bool:
    """Network and disk errors (``OSError``), and the HTTP library's own exceptions."""
    root = type(exc).__module__.split(".")[0]
    return isinstance(exc, (OSError, ValueError)) or root in {"httpx", "httpx2", "httpcore", "httpcore2",
                                                              "requests", "urllib3"}


def _place(cached: str, dest: Path) -> Tuple[int, str]:
    """Hard-link (or copy) a cached file to ``dest``; returns ``(bytes, sha256)`` after
    checking it against the hub's checksum carried by the cache blob's name."""
    from .convert import sha256_file

    dest.parent.mkdir(parents=True, exist_ok=True)
    blob = os.path.realpath(cached)
    try:
        os.link(blob, dest)  # the cache and the model directory share the bytes
    except OSError:
        shutil.copyfile(blob, dest)
    digest = sha256_file(str(dest))
    size = dest.stat().st_size
    name = os.path.basename(blob)
    expected = None
    if _SHA256.fullmatch(name):  # LFS blob: named by the SHA-256 of its content
        expected, got = name, digest
    elif _COMMIT.fullmatch(name):  # a git blob: named by its git object id
        expected, got = name, _git_blob_id(str(dest), size)
    if expected is not None and got != expected:
        raise GenosegError(f"{cached}: content does not match the hub's checksum {expected} (corrupt cache "
                           "entry): fetch again with --force")
    if size == 0:
        raise GenosegError(f"{cached} is empty: fetch again with --force")
    return size, digest


def _git_blob_id(path: str, size: int) -> str:
    h = hashlib.sha1(f"blob {size}\0".encode())
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _move_into_place(tmp: Path, outdir: Path) -> None:
    """A new directory is renamed in one step; into an existing one (``--force``) the
    files are moved one by one, the records last and the old conversion record first
    out, so that no state in between loads as complete."""
    if not outdir.exists():
        os.replace(tmp, outdir)
        return
    stale = outdir / "convert.json"
    if stale.exists():
        stale.unlink()
    records = {PROVENANCE_FILE, "convert.json"}
    rels = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
    for rel in [r for r in rels if r not in records] + [r for r in sorted(records) if r in rels]:
        (outdir / rel).parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / rel, outdir / rel)


def _cause(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
