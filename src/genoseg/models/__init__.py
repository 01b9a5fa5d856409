"""Model loading: ``load_model(path)`` for every published segmentation backbone.

See ``DESIGN.md`` ("Python API") for the stable surface of the returned object.
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import Optional

from ..errors import CheckpointError
from ..jsonfile import read_json
from .base import SegmentationModel

BACKBONES = ("segment_nt", "segment_nt_multi_species", "segment_enformer", "segment_borzoi")
_MODULES = {
    "segment_nt": "segment_nt",
    "segment_nt_multi_species": "segment_nt",
    "segment_enformer": "segment_enformer",
    "segment_borzoi": "segment_borzoi",
}

log = logging.getLogger(__name__)

__all__ = ["BACKBONES", "SegmentationModel", "detect_backbone", "load_model"]


def detect_backbone(path: str) -> str:
    """Infer the backbone of a model directory, from what it says it is first:

    1. ``config.json``'s ``backbone``;
    2. provenance: ``convert.json`` / ``fetch.json`` (written by genoseg), or the Hugging
       Face cache layout ``models--<owner>--<backbone>/snapshots/<commit>/`` the
       directory sits in;
    3. the files: ``jax_model/pytree_ckpt.*`` is SegmentNT (the multi-species one has
       the same files: without provenance only a directory name containing
       ``multi_species`` says so, with a warning), ``jax_model/params.*`` is SegmentEnformer or
       SegmentBorzoi, told apart by ``config.json``, the directory name or the
       checkpoint's top-level module.
    """
    jax_dir = os.path.join(path, "jax_model")
    if not os.path.isdir(path):
        raise CheckpointError(f"model directory not found: {path}")
    cfg = read_config_json(path)
    if cfg.get("backbone") in BACKBONES:
        return cfg["backbone"]
    recorded = provenance_backbone(path)
    if recorded:
        return recorded
    name = os.path.basename(os.path.normpath(path)).lower()
    if _checkpoint_file(jax_dir, "pytree_ckpt"):
        # The two SegmentNT checkpoints have the same files, shapes and feature list:
        # only provenance tells them apart. The directory name is a last-resort hint.
        if "multi_species" in name:
            log.warning("%s: no provenance (fetch.json, convert.json, Hugging Face cache) says which SegmentNT "
                        "this is; taking segment_nt_multi_species from the directory name (set \"backbone\" in "
                        "config.json or pass --backbone to be explicit)", path)
            return "segment_nt_multi_species"
        return "segment_nt"
    params = _checkpoint_file(jax_dir, "params")
    if params:
        if "posiional_encoding_type" in cfg or cfg.get("positional_encoding_type") == "borzoi":
            return "segment_borzoi"
        if cfg.get("positional_encoding_type") == "enformer":
            return "segment_enformer"
        for bb in ("segment_borzoi", "segment_enformer"):
            if bb.split("_")[1] in name:
                return bb
        from ..checkpoint import tree_modules

        top = {k.split("/", 1)[0] for k in tree_modules(params)}
        if "Borzoi" in top:
            return "segment_borzoi"
        if "Enformer" in top:
            return "segment_enformer"
    raise CheckpointError(
        f"{path}: cannot tell which model this is: expected jax_model/hyperparams.json + "
        "pytree_ckpt.joblib (SegmentNT) or jax_model/params.joblib + state.joblib "
        "(SegmentEnformer/SegmentBorzoi); pass backbone= to choose explicitly"
    )


def provenance_backbone(path: str) -> Optional[str]:
    """The backbone recorded by genoseg (``convert.json``, ``fetch.json``: its
    ``backbone``, or the published repository it names) or implied by the Hugging Face
    cache folder ``models--<owner>--<name>/snapshots/<commit>`` holding ``path``."""
    from ..convert import read_record

    record = read_record(path) or {}
    fetched = read_json(os.path.join(path, "fetch.json"), "fetch record", CheckpointError, default={})
    fetched = fetched if isinstance(fetched, dict) else {}
    candidates = [record.get("backbone"), fetched.get("backbone"),
                  str(fetched.get("repo") or "").rpartition("/")[2]]
    snapshot = os.path.dirname(os.path.abspath(path))
    repo_dir = os.path.basename(os.path.dirname(snapshot))
    if os.path.basename(snapshot) == "snapshots" and repo_dir.startswith("models--"):
        candidates.append(repo_dir.rpartition("--")[2])
    return next((c for c in candidates if c in BACKBONES), None)


def _checkpoint_file(jax_dir: str, stem: str) -> Optional[str]:
    for ext in (".safetensors", ".joblib"):
        f = os.path.join(jax_dir, stem + ext)
        if os.path.isfile(f):
            return f
    return None


def read_config_json(path: str) -> dict:
    """The optional ``config.json`` beside ``jax_model/`` (``{}`` when absent).

    Keys understood by every backbone: ``backbone`` and ``window_length`` (default input
    length for genome runs). Enformer/Borzoi also read their trunk configuration here.
    """
    cfg_path = os.path.join(path, "config.json")
    cfg = read_json(cfg_path, "model configuration", CheckpointError, default={})
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{cfg_path}: expected a JSON object")
    return cfg


def load_model(path: str | os.PathLike, backbone: Optional[str] = None,
               rescaling_factor: Optional[float] = None, compute_dtype: str = "float32",
               **options) -> SegmentationModel:
    """Load a segmentation model from a directory in the published layout.

    Args:
        path: model directory (``jax_model/...``, optionally ``config.json``), in the
            published joblib layout or converted by :func:`genoseg.convert.convert_model`
            (then every file is verified against ``convert.json``, a changed file is refused
            with :class:`~genoseg.errors.CheckpointError`, and no pickle is read).
        backbone: one of :data:`BACKBONES`; inferred from the files when ``None``.
        rescaling_factor: SegmentNT only: rotary rescaling at inference (``None`` =
            training value). See ``genoseg.models.segment_nt``.
        compute_dtype: ``"float32"`` or ``"bfloat16"``.
        **options: backbone-specific options (e.g. ``attention`` for SegmentNT).
    """
    from ..convert import start_verification
    from ..device import current_device

    path = os.fspath(path)
    # A converted directory: every file is checked against convert.json while the model is
    # built (hashing overlaps tracing and the copy to the device); nothing loaded is
    # returned, or used, unless the check passes.
    check = start_verification(path)
    try:
        model = _load(path, backbone, rescaling_factor, compute_dtype, options)
    except Exception:
        if check is not None:
            check.result()  # a changed file explains the failure better than its symptom
        raise
    if check is not None:
        check.result()
    model.device = str(current_device())  # recorded with the predictions
    return model


def _load(path: str, backbone: Optional[str], rescaling_factor: Optional[float], compute_dtype: str,
          options: dict) -> SegmentationModel:
    if backbone is None:
        backbone = detect_backbone(path)
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
    module = importlib.import_module(f".{_MODULES[backbone]}", __name__)
    window = read_config_json(path).get("window_length")
    if window is not None and "window_length" not in options:
        options["window_length"] = int(window)
    if backbone.startswith("segment_nt"):
        return module.load(path, backbone=backbone, rescaling_factor=rescaling_factor,
                           compute_dtype=compute_dtype, **options)
    if rescaling_factor is not None:
        raise ValueError("rescaling_factor applies to SegmentNT models only")
    return module.load(path, backbone=backbone, compute_dtype=compute_dtype, **options)
