"""SegmentEnformer: Enformer trunk + 1-D U-Net segmentation head.

Published layout (``InstaDeepAI/segment_enformer``)::

    jax_model/params.joblib   {module: {param: array}}; trunk under ``Enformer/``,
                              head under ``u_net_head/``
    jax_model/state.joblib    batch-norm moving averages (``.../batch_norm/~/mean_ema``)
    config.json               optional: trunk configuration with the authors' field
                              names, ``features``, ``window_length``

The checkpoint ships no configuration: without ``config.json`` the authors' defaults
apply (width 1536, 11 layers, 8 heads, key size 64, 7 downsamplings, 128 bases per
token, 196,608-bp windows).

Architecture: one-hot DNA -> stem (kernel-15 conv, residual conv block, attention
pooling) -> conv tower (``num_downsamples - 1`` x [conv block, residual pointwise conv
block, attention pooling], widths growing from D/2 to D) -> transformer with Enformer's
relative position features -> U-Net head on the transformer output
(``embedding_transformer_tower``): ``2 ** num_downsamples`` bases per token, so every
input base gets a prediction. The Enformer output heads and final pointwise block in
the checkpoint are not used.

Input: A/C/G/T/N (either case; N is an all-zero one-hot), length a multiple of
``4 * 2 ** num_downsamples`` (512 by default: the trunk's downsampling, then the head's
two poolings).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import haiku as hk
import jax
import jax.numpy as jnp

from ._trunks import (
    FEATURES,
    Conv1D,
    ConvBlock,
    OneHotSegmentationModel,
    RelativeTransformerTrunk,
    check_features,
    check_position_encoding,
    check_positive,
    make_model,
    one_hot,
    random_tree,
    read_checkpoint,
    read_config,
    segmentation_head,
    sigmoid_gelu,
    tower_widths,
)
from .base import resolve_dtype

TRUNK = "Enformer"
DEFAULT_WINDOW = 196_608
BN_EPS = 1e-5
LN_EPS = 1e-5


@dataclasses.dataclass(frozen=True)
class EnformerConfig:
    """Enformer trunk configuration; field names and defaults are the authors'.

    ``target_length``, the output-head sizes and the checkpointing/ConvNeXt switches
    concern parts the segmentation model does not run; they are accepted and ignored.
    """

    embed_dim: int = 1536
    num_transformer_layers: int = 11
    num_attention_heads: int = 8
    num_human_output_heads: int = 5313
    num_mouse_output_heads: int = 1643
    target_length: int = 896
    attention_dim_key: int = 64
    use_checkpointing: bool = False
    use_convnext: bool = False
    num_downsamples: int = 7
    dim_divisible_by: int = 128
    positional_encoding_type: str = "enformer"
    features: tuple[str, ...] = FEATURES

    def __post_init__(self):
        owner = "SegmentEnformer"
        check_positive(owner, embed_dim=self.embed_dim, num_transformer_layers=self.num_transformer_layers,
                       num_attention_heads=self.num_attention_heads,
                       attention_dim_key=self.attention_dim_key, num_downsamples=self.num_downsamples,
                       dim_divisible_by=self.dim_divisible_by)
        check_features(owner, self.features)
        if self.embed_dim % (2 * self.num_attention_heads):
            raise ValueError(f"{owner} config: embed_dim must be divisible by 2 * num_attention_heads")
        if self.num_downsamples < 3:
            raise ValueError(f"{owner} config: num_downsamples must be at least 3")
        if self.dim_divisible_by != 2**self.num_downsamples:
            raise ValueError(
                f"{owner} config: dim_divisible_by ({self.dim_divisible_by}) must equal "
                f"2 ** num_downsamples ({2**self.num_downsamples}): the head maps each "
                "trunk token back to that many bases"
            )
        check_position_encoding(owner, self.positional_encoding_type, self.num_position_features)

    @property
    def num_position_features(self) -> int:
        return self.embed_dim // self.num_attention_heads

    @property
    def bases_per_token(self) -> int:
        return 2**self.num_downsamples

    @property
    def length_multiple(self) -> int:
        return 4 * self.bases_per_token  # the head pools twice

    def conv_widths(self) -> list[int]:
        """Channel widths: stem output, then each conv-tower layer's output."""
        half = self.embed_dim // 2
        return [half] + tower_widths(half, self.embed_dim, self.num_downsamples - 1, self.dim_divisible_by)


# --------------------------------------------------------------------------- model
class _PoolLogits(hk.Module):
    """Per-position channel mixing (a 1x1 conv without bias, ``w`` ``[1, 1, C, C]``)."""

    def __call__(self, x: jax.Array) -> jax.Array:
        c = x.shape[-1]
        w = hk.get_parameter("w", (1, 1, c, c), x.dtype, init=jnp.zeros)
        return x @ w[0, 0].astype(x.dtype)


class AttentionPool(hk.Module):
    """Halve the length: each output is a softmax-weighted sum of two neighbours, with
    per-channel weights computed from the inputs."""

    def __init__(self, name: str = "attention_pool"):
        super().__init__(name=name)
        self._logits = _PoolLogits(name="conv2_d")

    def __call__(self, x: jax.Array) -> jax.Array:  # [B, T, C] -> [B, T/2, C]
        b, t, c = x.shape
        pairs = x.reshape(b, t // 2, 2, c)
        weights = jax.nn.softmax(self._logits(pairs).astype(jnp.float32), axis=2)
        return jnp.sum(pairs * weights.astype(x.dtype), axis=2)


class ResidualConvBlock(hk.Module):
    def __init__(self, channels: int, name: str = "residual_conv_block"):
        super().__init__(name=name)
        self._channels = channels

    def __call__(self, x: jax.Array) -> jax.Array:
        return x + ConvBlock(self._channels, 1, sigmoid_gelu, BN_EPS)(x)


class EnformerTrunk(RelativeTransformerTrunk):
    """Tokens ``[B, L]`` -> transformer output ``[B, L / 2**num_downsamples, D]``."""

    softmax_first = True

    def __init__(self, cfg: EnformerConfig):
        super().__init__(name=TRUNK, width=cfg.embed_dim, num_layers=cfg.num_transformer_layers,
                         heads=cfg.num_attention_heads, key_size=cfg.attention_dim_key,
                         num_position_features=cfg.num_position_features,
                         position_encoding=cfg.positional_encoding_type, ln_eps=LN_EPS)
        self._cfg = cfg

    def __call__(self, tokens: jax.Array, dtype) -> jax.Array:
        x = one_hot(tokens, dtype)  # [B, L, 4]
        x = self._stem(x)  # [B, L/2, D/2]
        x = self._conv_tower(x)  # [B, L/2**n, D]
        return self.transformer_tower(x)

    def _stem(self, x: jax.Array) -> jax.Array:
        half = self._cfg.embed_dim // 2
        x = Conv1D(half, 15)(x)
        x = ResidualConvBlock(half)(x)
        return AttentionPool()(x)

    def _conv_tower(self, x: jax.Array) -> jax.Array:
        widths = self._cfg.conv_widths()
        for i, width in enumerate(widths[1:]):
            with hk.name_scope(f"layer_{i}"):
                x = ConvBlock(width, 5, sigmoid_gelu, BN_EPS)(x)
                x = ResidualConvBlock(width)(x)
                x = AttentionPool()(x)
        return x


def build_forward(cfg: EnformerConfig, dtype):
    """Haiku-transformed forward (with state): tokens ``[B, L]`` -> logits ``[B, L, F, 2]``."""

    def forward(tokens):
        emb = EnformerTrunk(cfg)(tokens, dtype)
        return segmentation_head(cfg, cfg.bases_per_token)(emb)

    return hk.without_apply_rng(hk.transform_with_state(forward))


# ------------------------------------------------------------------------ loader
class SegmentEnformer(OneHotSegmentationModel):
    """Loaded SegmentEnformer model; see :class:`~genoseg.models.base.SegmentationModel`."""

    display_name = "SegmentEnformer"

    def length_rule(self) -> tuple[int, int]:
        m = self.config.length_multiple
        return m, m

    def output_span(self, length: int) -> tuple[int, int]:
        return (0, int(length))


def build_model(cfg: EnformerConfig, params: dict, state: dict, *, backbone: str = "segment_enformer",
                compute_dtype: str = "float32", window_length: Optional[int] = None,
                source: str = "<memory>") -> SegmentEnformer:
    """Build a model from a config and ``{module: {name: array}}`` trees (published names;
    extra modules such as the unused output heads are ignored)."""
    transformed = build_forward(cfg, resolve_dtype(compute_dtype))
    return make_model(SegmentEnformer, cfg, transformed, params, state,
                      probe_length=cfg.length_multiple, backbone=backbone,
                      compute_dtype=compute_dtype,
                      window_length=DEFAULT_WINDOW if window_length is None else window_length,
                      source=source)


def random_params(cfg: EnformerConfig, seed: int = 0) -> tuple[dict, dict]:
    """Random ``(params, state)`` with the published names (benchmarks, tests)."""
    return random_tree(build_forward(cfg, jnp.float32), cfg.length_multiple, seed)


def load(path: str, backbone: str = "segment_enformer", compute_dtype: str = "float32",
         window_length: Optional[int] = None) -> SegmentEnformer:
    """Load a SegmentEnformer directory (published layout, optional ``config.json``).

    Args:
        path: directory holding ``jax_model/params.joblib`` and ``state.joblib``.
        compute_dtype: ``"float32"`` or ``"bfloat16"`` (layer and batch norms stay float32).
        window_length: default window for genome runs (196,608 bp when ``None``).
    """
    cfg = read_config(path, EnformerConfig, "SegmentEnformer")
    params, state = read_checkpoint(path)
    return build_model(cfg, params, state, backbone=backbone, compute_dtype=compute_dtype,
                       window_length=window_length, source=path)
