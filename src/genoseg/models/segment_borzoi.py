"""SegmentBorzoi: Borzoi trunk + 1-D U-Net segmentation head.

Published layout (``InstaDeepAI/segment_borzoi``)::

    jax_model/params.joblib   {module: {param: array}}; trunk under ``Borzoi/``,
                              head under ``u_net_head/``
    jax_model/state.joblib    batch-norm moving averages
    config.json               optional: trunk configuration with the authors' field
                              names (their spelling ``posiional_encoding_type``
                              included), ``features``, ``window_length``

Without ``config.json`` the authors' defaults apply (width 1536, 8 layers, 8 heads, key
size 64, 32 relative-position features, 7 downsamplings, ``target_length`` 6144,
524,288-bp windows).

Architecture: one-hot DNA -> stem (kernel-15 conv, max pool) -> conv tower
(``num_downsamples - 1`` x [conv block, max pool]; the last two layers' outputs are kept
for the U-Net) -> transformer with Borzoi's relative position features -> U-Net
upsampling (``num_unet_conv`` x [batch norm, GELU, linear on both paths, nearest x2
upsampling, sum, separable conv to 1536 channels]) -> crop to the central
``target_length`` tokens -> final pointwise conv block -> U-Net head. Each output token
covers ``2 ** (num_downsamples - num_unet_conv)`` = ``dim_divisible_by`` bases (32).

Output span: only the central ``target_length * dim_divisible_by`` bases of a window
are predicted (196,608 of 524,288 by default); the rest is context.

``target_length`` for other window lengths: it is a fixed number of tokens, as in the
authors' model, whatever the input length. The model thus predicts exactly what the
authors' code predicts for any window it accepts, and a window only adds or removes
context around the same central 196,608 bp. Windows shorter than
``target_length * dim_divisible_by`` are refused. To predict a smaller central part
(e.g. for shorter windows) pass ``target_length=`` to :func:`load` / ``load_model`` or
set it in ``config.json``; :func:`proportional_target_length` gives the value that keeps
the trained central fraction (37.5 %). Changing it changes the predictions near the
crop edges (the head's convolutions see a different extent), so it is a deliberate,
visible choice rather than an automatic rescaling.

Input: A/C/G/T/N (either case; N is an all-zero one-hot), length a multiple of
``4 * dim_divisible_by`` (128 by default) and at least the predicted span.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import haiku as hk
import jax
import jax.numpy as jnp

from ._trunks import (
    FEATURES,
    BatchNorm,
    Conv1D,
    ConvBlock,
    OneHotSegmentationModel,
    RelativeTransformerTrunk,
    check_features,
    check_position_encoding,
    check_positive,
    make_model,
    max_pool2,
    one_hot,
    random_tree,
    read_checkpoint,
    read_config,
    segmentation_head,
    tanh_gelu,
    tower_widths,
)
from .base import resolve_dtype

TRUNK = "Borzoi"
DEFAULT_WINDOW = 524_288
DEFAULT_TARGET_LENGTH = 6144
BN_EPS = 1e-3
LN_EPS = 1e-3
#: Output width of the U-Net blocks' separable convolutions: a constant of the
#: authors' implementation, independent of the configuration.
SEPARABLE_CONV_WIDTH = 1536
#: The U-Net upsampling reuses the outputs of the conv tower's last two layers.
NUM_SKIPS = 2


@dataclasses.dataclass(frozen=True)
class BorzoiConfig:
    """Borzoi trunk configuration; field names (misspelling included) and defaults are
    the authors'. ``target_length`` counts output tokens (``-1``: no crop). The
    output-head sizes and the checkpointing/ConvNeXt switches are accepted and ignored.
    """

    int_embed_dim: int = 512
    res_tower_embed_dim_init: int = 608
    embed_dim: int = 1536
    num_transformer_layers: int = 8
    num_attention_heads: int = 8
    num_human_output_heads: int = 7611
    num_mouse_output_heads: int = 2608
    target_length: int = DEFAULT_TARGET_LENGTH
    attention_dim_key: int = 64
    use_checkpointing: bool = False
    use_convnext: bool = False
    num_rel_pos_features: int = 32
    num_downsamples: int = 7
    dim_divisible_by: int = 32
    posiional_encoding_type: str = "borzoi"
    num_unet_conv: int = 2
    final_conv_block_embed_dim: int = 1920
    features: tuple[str, ...] = FEATURES

    def __post_init__(self):
        owner = "SegmentBorzoi"
        check_positive(owner, int_embed_dim=self.int_embed_dim,
                       res_tower_embed_dim_init=self.res_tower_embed_dim_init, embed_dim=self.embed_dim,
                       num_transformer_layers=self.num_transformer_layers,
                       num_attention_heads=self.num_attention_heads,
                       attention_dim_key=self.attention_dim_key,
                       num_rel_pos_features=self.num_rel_pos_features,
                       num_downsamples=self.num_downsamples, dim_divisible_by=self.dim_divisible_by,
                       final_conv_block_embed_dim=self.final_conv_block_embed_dim)
        check_features(owner, self.features)
        if self.embed_dim % self.num_attention_heads:
            raise ValueError(f"{owner} config: embed_dim must be divisible by num_attention_heads")
        if self.num_downsamples < 3:
            raise ValueError(f"{owner} config: num_downsamples must be at least 3")
        if not 0 <= self.num_unet_conv <= NUM_SKIPS:
            raise ValueError(f"{owner} config: num_unet_conv must be 0, 1 or 2, got {self.num_unet_conv}")
        if self.dim_divisible_by != self.bases_per_token:
            raise ValueError(
                f"{owner} config: dim_divisible_by ({self.dim_divisible_by}) must equal "
                f"2 ** (num_downsamples - num_unet_conv) ({self.bases_per_token}): the head "
                "maps each output token back to that many bases"
            )
        if self.target_length != -1 and (self.target_length <= 0 or self.target_length % 4):
            raise ValueError(
                f"{owner} config: target_length must be -1 (no crop) or a positive multiple "
                f"of 4 (the head pools twice), got {self.target_length}"
            )
        check_position_encoding(owner, self.posiional_encoding_type, self.num_rel_pos_features)

    @property
    def bases_per_token(self) -> int:
        return 2 ** (self.num_downsamples - self.num_unet_conv)

    @property
    def length_multiple(self) -> int:
        # trunk downsampling, and a head input divisible by 4 (always even crop margins)
        return max(2**self.num_downsamples, 4 * self.bases_per_token)

    @property
    def predicted_length(self) -> Optional[int]:
        """Bases predicted per window (``None``: all of them)."""
        return None if self.target_length == -1 else self.target_length * self.bases_per_token

    @property
    def min_length(self) -> int:
        m = self.length_multiple
        return max(m, -(-(self.predicted_length or 0) // m) * m)

    def conv_widths(self) -> list[int]:
        """Channel widths: stem output, then each conv-tower layer's output."""
        return [self.int_embed_dim] + tower_widths(
            self.res_tower_embed_dim_init, self.embed_dim, self.num_downsamples - 1, self.dim_divisible_by)


def proportional_target_length(window_length: int, cfg: Optional[BorzoiConfig] = None) -> int:
    """``target_length`` (tokens) that predicts the same central fraction of a
    ``window_length`` window as the published model does of its 524,288-bp window
    (6144 x 32 bp = 37.5 %), rounded down to a multiple of 4."""
    cfg = cfg or BorzoiConfig()
    fraction = DEFAULT_TARGET_LENGTH * 32 / DEFAULT_WINDOW
    tokens = int(window_length * fraction) // cfg.bases_per_token
    return max(4, tokens // 4 * 4)


# --------------------------------------------------------------------------- model
class SeparableConv(hk.Module):
    """Depthwise kernel-3 conv, then a pointwise conv to ``channels`` (no biases)."""

    def __init__(self, channels: int, name: str = "separable_depthwise_conv1_d"):
        super().__init__(name=name)
        self._depthwise = Conv1D(None, 3, with_bias=False, depthwise=True, name="depthwise_conv1_d")
        self._pointwise = Conv1D(channels, 1, with_bias=False, name="conv1_d")

    def __call__(self, x: jax.Array) -> jax.Array:
        return self._pointwise(self._depthwise(x))


class UNetUpBlock(hk.Module):
    """Upsample ``x`` x2 and merge the tower output ``skip`` of that resolution: both
    paths get batch norm, GELU and a linear map to ``width``; then nearest-neighbour
    upsampling of ``x``, sum, separable conv."""

    def __init__(self, width: int, name: str):
        super().__init__(name=name)
        self._width = width

    def __call__(self, x: jax.Array, skip: jax.Array) -> jax.Array:  # [B, T, C], [B, 2T, C']
        x = tanh_gelu(BatchNorm(BN_EPS, name="batch_norm")(x))
        skip = tanh_gelu(BatchNorm(BN_EPS, name="batch_norm_unet_repr")(skip))
        x = hk.Linear(self._width, name="linear")(x)
        skip = hk.Linear(self._width, name="linear_unet")(skip)
        x = jnp.repeat(x, 2, axis=1) + skip
        return SeparableConv(SEPARABLE_CONV_WIDTH)(x)


class BorzoiTrunk(RelativeTransformerTrunk):
    """Tokens ``[B, L]`` -> final embeddings ``[B, target_length, final_conv_block_embed_dim]``."""

    def __init__(self, cfg: BorzoiConfig):
        super().__init__(name=TRUNK, width=cfg.embed_dim, num_layers=cfg.num_transformer_layers,
                         heads=cfg.num_attention_heads, key_size=cfg.attention_dim_key,
                         num_position_features=cfg.num_rel_pos_features,
                         position_encoding=cfg.posiional_encoding_type, ln_eps=LN_EPS)
        self._cfg = cfg

    def __call__(self, tokens: jax.Array, dtype) -> jax.Array:
        x = one_hot(tokens, dtype)  # [B, L, 4]
        x = self._stem(x)  # [B, L/2, C0]
        x, skips = self._conv_tower(x)  # [B, L/2**n, D]
        x = self.transformer_tower(x)
        x = self._unet_conv(x, skips)  # [B, L/bases_per_token, 1536]
        x = crop_center(x, self._cfg.target_length)
        return self._final_conv_block(x)

    def _stem(self, x: jax.Array) -> jax.Array:
        return max_pool2(Conv1D(self._cfg.int_embed_dim, 15)(x))

    def _conv_tower(self, x: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
        widths = self._cfg.conv_widths()
        n_layers = len(widths) - 1
        skips = []
        for i, width in enumerate(widths[1:]):
            with hk.name_scope(f"layer_{i}"):
                x = ConvBlock(width, 5, tanh_gelu, BN_EPS)(x)
            if i >= n_layers - NUM_SKIPS:
                skips.append(x)
            x = max_pool2(x)
        return x, skips

    def _unet_conv(self, x: jax.Array, skips: list[jax.Array]) -> jax.Array:
        for i in range(self._cfg.num_unet_conv):
            x = UNetUpBlock(self._cfg.embed_dim, name=f"u_net_conv_block_{i}")(x, skips[-1 - i])
        return x

    def _final_conv_block(self, x: jax.Array) -> jax.Array:
        return tanh_gelu(ConvBlock(self._cfg.final_conv_block_embed_dim, 1, tanh_gelu, BN_EPS)(x))


def crop_center(x: jax.Array, target: int) -> jax.Array:
    """The central ``target`` positions of ``[B, T, C]`` (all when ``target == -1``)."""
    t = x.shape[1]
    if target == -1 or target == t:
        return x
    if t < target or (t - target) % 2:
        raise ValueError(f"cannot crop {t} tokens to a central {target}")
    start = (t - target) // 2
    return x[:, start:start + target]


def build_forward(cfg: BorzoiConfig, dtype):
    """Haiku-transformed forward (with state): tokens ``[B, L]`` -> logits
    ``[B, target_length * dim_divisible_by, F, 2]``."""

    def forward(tokens):
        emb = BorzoiTrunk(cfg)(tokens, dtype)
        return segmentation_head(cfg, cfg.bases_per_token)(emb)

    return hk.without_apply_rng(hk.transform_with_state(forward))


# ------------------------------------------------------------------------ loader
class SegmentBorzoi(OneHotSegmentationModel):
    """Loaded SegmentBorzoi model; see :class:`~genoseg.models.base.SegmentationModel`."""

    display_name = "SegmentBorzoi"

    def length_rule(self) -> tuple[int, int]:
        return self.config.length_multiple, self.config.min_length

    def output_span(self, length: int) -> tuple[int, int]:
        c = self.config.predicted_length
        if c is None:
            return (0, int(length))
        start = (int(length) - c) // 2
        return (start, start + c)


def build_model(cfg: BorzoiConfig, params: dict, state: dict, *, backbone: str = "segment_borzoi",
                compute_dtype: str = "float32", window_length: Optional[int] = None,
                target_length: Optional[int] = None, source: str = "<memory>") -> SegmentBorzoi:
    """Build a model from a config and ``{module: {name: array}}`` trees (published names;
    extra modules such as the unused output head are ignored)."""
    if target_length is not None:
        cfg = dataclasses.replace(cfg, target_length=int(target_length))
    window = DEFAULT_WINDOW if window_length is None else int(window_length)
    if cfg.predicted_length is not None and window < cfg.predicted_length:
        raise ValueError(
            f"SegmentBorzoi window_length {window} is shorter than the {cfg.predicted_length} "
            f"central bases it predicts (target_length {cfg.target_length} x "
            f"{cfg.bases_per_token} bp); pass a smaller target_length, e.g. "
            f"target_length={proportional_target_length(window, cfg)} keeps the published "
            "central fraction (37.5 %)"
        )
    transformed = build_forward(cfg, resolve_dtype(compute_dtype))
    return make_model(SegmentBorzoi, cfg, transformed, params, state, probe_length=cfg.min_length,
                      backbone=backbone, compute_dtype=compute_dtype, window_length=window,
                      source=source)


def random_params(cfg: BorzoiConfig, seed: int = 0) -> tuple[dict, dict]:
    """Random ``(params, state)`` with the published names (benchmarks, tests)."""
    return random_tree(build_forward(cfg, jnp.float32), cfg.min_length, seed)


def load(path: str, backbone: str = "segment_borzoi", compute_dtype: str = "float32",
         window_length: Optional[int] = None, target_length: Optional[int] = None) -> SegmentBorzoi:
    """Load a SegmentBorzoi directory (published layout, optional ``config.json``).

    Args:
        path: directory holding ``jax_model/params.joblib`` and ``state.joblib``.
        compute_dtype: ``"float32"`` or ``"bfloat16"`` (layer and batch norms stay float32).
        window_length: default window for genome runs (524,288 bp when ``None``).
        target_length: output tokens per window, overriding the configuration (see the
            module docstring); ``-1`` predicts every base.
    """
    cfg = read_config(path, BorzoiConfig, "SegmentBorzoi")
    params, state = read_checkpoint(path)
    return build_model(cfg, params, state, backbone=backbone, compute_dtype=compute_dtype,
                       window_length=window_length, target_length=target_length, source=path)
