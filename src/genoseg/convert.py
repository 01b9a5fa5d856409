"""Pickle-free model directories: the published joblib checkpoints as safetensors.

The published weights are pickles (read safely, but slowly, by :mod:`genoseg.checkpoint`).
:func:`convert_model` turns a model directory into one that holds no pickle::

    DST/jax_model/<stem>.safetensors   one per SRC/jax_model/<stem>.joblib (same tree,
                                       bit-identical arrays; see checkpoint.save_tree)
    DST/jax_model/*.json               copied (hyperparams.json)
    DST/config.json, DST/fetch.json    copied when SRC has them
    DST/convert.json                   the record below

``convert.json``::

    {"format": "genoseg-converted-weights/1", "genoseg_version": "0.1.0",
     "backbone": "segment_nt",
     "source": {"jax_model/pytree_ckpt.joblib": {"bytes": ..., "sha256": "..."}},
     "files":  {"jax_model/pytree_ckpt.safetensors": {"bytes": ..., "sha256": "...",
                    "source": "jax_model/pytree_ckpt.joblib",
                    "block_bytes": 33554432, "block_sha256": ["...", ...]},
                "jax_model/hyperparams.json": {...}}}

Paths are relative to the directory (a copied directory stays valid). ``sha256`` is the
whole file's (what ``sha256sum`` prints); ``block_sha256`` are the digests of
consecutive ``block_bytes`` pieces, so that :func:`verify_converted` can check a 2 GB
file on several cores at once. ``load_model`` verifies every file before reading any
and refuses a directory whose files do not match (``CheckpointError``, exit status 2);
in a converted directory no pickle is ever opened, even when the joblib files are
still there (an in-place conversion, as ``fetch-model`` makes).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mmap
import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Iterator, Optional

from . import __version__
from .errors import CheckpointError, GenosegError

log = logging.getLogger(__name__)

RECORD = "convert.json"
FORMAT = "genoseg-converted-weights/1"
BLOCK_BYTES = 32 << 20
#: Small files copied beside the converted checkpoints (relative to the model directory).
_TOP_LEVEL_COPIES = ("config.json", "fetch.json")


# ------------------------------------------------------------------ hashing
def sha256_file(path: str) -> str:
    """SHA-256 of a file (hex), streamed."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


@contextlib.contextmanager
def _mapped(path: str) -> Iterator[memoryview]:
    """The file's bytes as a read-only memoryview (memory-mapped; empty files too)."""
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            yield memoryview(b"")
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            view = memoryview(mm)
            try:
                yield view
            finally:
                view.release()


def _block_digests(path: str, block: int) -> list[str]:
    with _mapped(path) as view:
        return [hashlib.sha256(view[i:i + block]).hexdigest() for i in range(0, max(len(view), 1), block)]


def file_record(path: str, block: int = BLOCK_BYTES) -> dict:
    """``{"bytes", "sha256", "block_bytes", "block_sha256"}`` of one file."""
    return {"bytes": os.path.getsize(path), "sha256": sha256_file(path), "block_bytes": block,
            "block_sha256": _block_digests(path, block)}


def _workers() -> int:
    from .parallel import available_cores

    return min(16, available_cores())


# ------------------------------------------------------------------ reading
def read_record(model_dir: str) -> Optional[dict]:
    """The directory's ``convert.json`` (``None`` when the directory is not converted)."""
    from .jsonfile import read_json

    rec = read_json(os.path.join(model_dir, RECORD), "converted-weights record", CheckpointError, default=None)
    if rec is None:
        return None
    if not isinstance(rec, dict) or rec.get("format") != FORMAT or not isinstance(rec.get("files"), dict):
        raise CheckpointError(f"{os.path.join(model_dir, RECORD)}: not a {FORMAT} record; "
                              "re-run genoseg convert-model")
    return rec


def verify_converted(model_dir: str, record: Optional[dict] = None) -> Optional[dict]:
    """Check every file of a converted directory against ``convert.json``.

    Blocks are hashed in parallel (hashlib releases the GIL), so the check costs about
    ``size / (cores x SHA-256 speed)``. Returns the record, or ``None`` when the
    directory is not converted.

    Raises:
        CheckpointError: a file is missing, has another size, or a digest differs
            (the message names the file and the fix).
    """
    record = record if record is not None else read_record(model_dir)
    if record is None:
        return None
    paths, jobs = [], []
    for rel, info in sorted(record["files"].items()):
        path = _inside(model_dir, rel)
        if not os.path.isfile(path):
            raise CheckpointError(f"{path}: listed in {RECORD} but missing; re-run genoseg convert-model")
        if os.path.getsize(path) != info.get("bytes"):
            raise _tampered(path, f"{os.path.getsize(path)} bytes, {RECORD} says {info.get('bytes')}")
        block = int(info.get("block_bytes") or 0)
        digests = info.get("block_sha256") or []
        if block <= 0 or not digests:
            raise CheckpointError(f"{model_dir}/{RECORD}: no block digests for {rel}; re-run genoseg convert-model")
        jobs += [(len(paths), i * block, block, digest) for i, digest in enumerate(digests)]
        paths.append(path)

    with contextlib.ExitStack() as stack:
        views = [stack.enter_context(_mapped(p)) for p in paths]

        def check(job) -> Optional[str]:
            k, start, size, digest = job
            return None if hashlib.sha256(views[k][start:start + size]).hexdigest() == digest else paths[k]

        with ThreadPoolExecutor(_workers()) as pool:
            for bad in pool.map(check, jobs):
                if bad is not None:
                    raise _tampered(bad, "SHA-256 differs from the one recorded at conversion")
    return record


def start_verification(model_dir: str) -> Optional[Future]:
    """:func:`verify_converted` on background threads (hashing releases the GIL), so that
    it overlaps the rest of loading; ``None`` when the directory is not converted. The
    caller must take ``.result()`` (which raises what ``verify_converted`` raises) before
    using anything it loaded."""
    record = read_record(model_dir)
    if record is None:
        return None
    pool = ThreadPoolExecutor(1, thread_name_prefix="genoseg-verify")
    try:
        return pool.submit(verify_converted, model_dir, record)
    finally:
        pool.shutdown(wait=False)


def _tampered(path: str, what: str) -> CheckpointError:
    return CheckpointError(f"{path}: {what}: the file changed after conversion (corrupt or tampered); "
                           "refusing to load it. Re-run genoseg convert-model from the published weights")


def _inside(model_dir: str, rel: str) -> str:
    """``model_dir/rel`` for a relative path from a record, never outside ``model_dir``."""
    if os.path.isabs(rel) or ".." in rel.replace("\\", "/").split("/"):
        raise CheckpointError(f"{os.path.join(model_dir, RECORD)}: refusing path {rel!r}")
    return os.path.join(model_dir, rel)


# --------------------------------------------------------------- converting
def convert_model(src: str, dst: str, *, backbone: Optional[str] = None, overwrite: bool = False) -> dict:
    """Convert model directory ``src`` into the pickle-free directory ``dst``.

    Every ``src/jax_model/*.joblib`` is read with the restricted unpickler and written as
    ``.safetensors``; the small json files are copied; ``dst/convert.json`` records the
    SHA-256 of source and result files. ``dst`` may be ``src`` (conversion in place: the
    safetensors files and the record are added beside the joblib files). Otherwise
    ``dst`` is built beside its final path and renamed into place when complete.

    Returns the record. Raises :class:`GenosegError` when ``dst`` exists (without
    ``overwrite``) or ``src`` is not a model directory.
    """
    from .models import detect_backbone

    src_jax = os.path.join(src, "jax_model")
    sources = sorted(f for f in _listdir(src_jax) if f.endswith(".joblib"))
    if not sources:
        raise GenosegError(f"{src}: no jax_model/*.joblib to convert (expected the published layout)")
    backbone = backbone or detect_backbone(src)
    in_place = os.path.exists(dst) and os.path.samefile(src, dst)
    if in_place:
        if os.path.exists(os.path.join(dst, RECORD)):
            if not overwrite:
                raise GenosegError(f"{dst} is already converted ({RECORD}); pass --overwrite to convert again")
            os.remove(os.path.join(dst, RECORD))  # until the new record exists, nothing loads half-converted files
        record = _write(src, dst, sources, backbone, in_place=True)
    else:
        from .outputs import atomic_path

        with atomic_path(dst, overwrite=overwrite, is_dir=True) as tmp:
            record = _write(src, tmp, sources, backbone, in_place=False)
    log.info("converted %s (%s): %d checkpoint file(s) -> %s", src, backbone, len(sources), dst)
    return record


def _write(src: str, out: str, sources: list[str], backbone: str, in_place: bool) -> dict:
    from .checkpoint import load_params_tree, save_tree
    from .outputs import atomic_path

    os.makedirs(os.path.join(out, "jax_model"), exist_ok=True)
    record = {"format": FORMAT, "genoseg_version": __version__, "backbone": backbone, "source": {}, "files": {}}
    for name in sources:
        rel_src = f"jax_model/{name}"
        rel_out = f"jax_model/{name[:-len('.joblib')]}.safetensors"
        path = os.path.join(src, rel_src)
        log.info("converting %s", path)
        record["source"][rel_src] = {"bytes": os.path.getsize(path), "sha256": sha256_file(path)}
        tree = load_params_tree(path)
        with atomic_path(os.path.join(out, rel_out), overwrite=True) as tmp:
            save_tree(tree, tmp)
        del tree
        record["files"][rel_out] = {**file_record(os.path.join(out, rel_out)), "source": rel_src}
    copies = [f"jax_model/{f}" for f in sorted(_listdir(os.path.join(src, "jax_model"))) if f.endswith(".json")]
    copies += [f for f in _TOP_LEVEL_COPIES if os.path.isfile(os.path.join(src, f))]
    for rel in copies:
        if not in_place:
            shutil.copyfile(os.path.join(src, rel), os.path.join(out, rel))
        record["files"][rel] = file_record(os.path.join(out, rel))
    _write_json(os.path.join(out, RECORD), record)
    return record


def _write_json(path: str, obj: dict) -> None:
    import json

    from .outputs import atomic_path

    with atomic_path(path, overwrite=True) as tmp:
        with open(tmp, "w") as fh:
            json.dump(obj, fh, indent=1)
            fh.write("\n")


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        raise GenosegError(f"{path} not found: expected a model directory in the published jax_model/ layout") from None
