"""Model loading: ``load_model(path)`` for every published segmentation backbone.

See ``DESIGN.md`` ("Python API") for the stable surface of the returned object.
"""

from __future__ import annotations

import importlib
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

__all__ = ["BACKBONES", "SegmentationModel", "detect_backbone", "load_model"]


def detect_backbone(path: str) -> str:
    """Infer the backbone from the files of a model directory.

    SegmentNT directories hold ``jax_model/pytree_ckpt.joblib`` (multi-species when the
    directory name or ``config.json`` says so); Enformer and Borzoi ones hold
    ``jax_model/params.joblib``, told apart by ``config.json`` or the checkpoint's
    top-level module name.
    """
    jax_dir = os.path.join(path, "jax_model")
    if not os.path.isdir(path):
        raise CheckpointError(f"model directory not found: {path}")
    cfg = read_config_json(path)
    if cfg.get("backbone") in BACKBONES:
        return cfg["backbone"]
    if os.path.isfile(os.path.join(jax_dir, "pytree_ckpt.joblib")):
        name = os.path.basename(os.path.normpath(path)).lower()
        return "segment_nt_multi_species" if "multi_species" in name else "segment_nt"
    if os.path.isfile(os.path.join(jax_dir, "params.joblib")):
        if "posiional_encoding_type" in cfg or cfg.get("positional_encoding_type") == "borzoi":
            return "segment_borzoi"
        if cfg.get("positional_encoding_type") == "enformer":
            return "segment_enformer"
        name = os.path.basename(os.path.normpath(path)).lower()
        for bb in ("segment_borzoi", "segment_enformer"):
            if bb.split("_")[1] in name:
                return bb
        from ..checkpoint import load_params_tree

        top = {k.split("/", 1)[0] for k in load_params_tree(os.path.join(jax_dir, "params.joblib"))}
        if "Borzoi" in top:
            return "segment_borzoi"
        if "Enformer" in top:
            return "segment_enformer"
    raise CheckpointError(
        f"{path}: cannot tell which model this is: expected jax_model/hyperparams.json + "
        "pytree_ckpt.joblib (SegmentNT) or jax_model/params.joblib + state.joblib "
        "(SegmentEnformer/SegmentBorzoi); pass backbone= to choose explicitly"
    )


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
        path: model directory (``jax_model/...``, optionally ``config.json``).
        backbone: one of :data:`BACKBONES`; inferred from the files when ``None``.
        rescaling_factor: SegmentNT only: rotary rescaling at inference (``None`` =
            training value). See ``genoseg.models.segment_nt``.
        compute_dtype: ``"float32"`` or ``"bfloat16"``.
        **options: backbone-specific options (e.g. ``attention`` for SegmentNT).
    """
    path = os.fspath(path)
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
