"""Pieces shared by the SegmentEnformer and SegmentBorzoi trunks.

Both trunks read one-hot DNA, run convolution blocks with batch norm (inference mode:
the moving averages shipped in ``state.joblib``), then a transformer whose attention
adds relative-position logits, and feed a 1-D U-Net head. This module holds what the
two have in common; ``segment_enformer`` and ``segment_borzoi`` hold the rest.

Layout: activations are channels-last ``[B, T, C]`` throughout, but parameters keep the
shapes of the published checkpoints, which were trained channels-first (``NCW``):
convolution biases are ``[C, 1]`` and batch-norm scale/offset/statistics ``[1, C, 1]``.

Module names reproduce the checkpoints' names: the trunk is one ``hk.Module``
(``Enformer`` or ``Borzoi``) whose private methods (``_stem``, ``_conv_tower``,
``_transformer_attention``, ...) open haiku's ``~_<method>`` name scopes, with
``layer_<i>`` scopes inside.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from typing import Callable, Optional, Sequence

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from ..checkpoint import read_model_tree
from ..errors import CheckpointError
from ..features import PUBLISHED_FEATURES
from .base import SegmentationModel, encode_bases, resolve_dtype
from .common import LayerNorm32, UNetHead, attend, cast_params, is_norm_module, select_tree

HEAD = "u_net_head"

#: The 14 features of the published SegmentEnformer / SegmentBorzoi checkpoints, in the
#: order of their output axis. The checkpoints do not store it; ``config.json`` may
#: override it with a ``features`` list.
FEATURES = PUBLISHED_FEATURES

# Token ids of the authors' single-nucleotide tokenizer: code i of BASES -> 10 + i,
# i.e. A=10, T=11, C=12, G=13, N=14.
BASES = "ATCGN"
FIRST_BASE_TOKEN = 10
# One-hot channel order of the trunks (A, C, G, T); N (14) is the all-zero vector.
ONE_HOT_TOKENS = (10, 12, 13, 11)

# config.json keys read by every backbone, not trunk fields.
_GENERIC_KEYS = {"backbone", "window_length"}


# --------------------------------------------------------------------- tokenizer
def tokenize(seqs: Sequence[str], model_name: str) -> np.ndarray:
    """One token per base: ``[B, L]`` int32 ids (A=10, T=11, C=12, G=13, N=14), either
    case. Other characters raise ``ValueError`` naming sequence and position."""
    codes = encode_bases(list(seqs), BASES, f"{model_name} accepts only A, C, G, T and N")
    return codes.astype(np.int32) + FIRST_BASE_TOKEN


def one_hot(tokens: jax.Array, dtype) -> jax.Array:
    """``[B, L]`` token ids -> ``[B, L, 4]`` one-hot (A, C, G, T); N and any other id
    give zeros."""
    return (tokens[..., None] == jnp.asarray(ONE_HOT_TOKENS, jnp.int32)).astype(dtype)


# ------------------------------------------------------------------ config utils
def check_positive(owner: str, **values) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f"{owner} config: {name} must be a positive integer, got {value!r}")


def check_features(owner: str, features: Sequence[str]) -> None:
    if not features or not all(isinstance(f, str) and f for f in features):
        raise ValueError(f"{owner} config: features must be a non-empty list of names")
    dup = sorted({f for f in features if list(features).count(f) > 1})
    if dup:
        raise ValueError(f"{owner} config: duplicate feature names {dup}")


def tower_widths(start: int, end: int, num: int, divisible_by: int) -> list[int]:
    """``num`` channel widths growing geometrically from ``start`` to ``end``, each
    rounded to a multiple of ``divisible_by`` (the published conv-tower widths)."""
    if num < 2:
        raise ValueError("the conv tower needs at least two layers (num_downsamples >= 3)")
    ratio = math.exp(math.log(end / start) / (num - 1))
    return [int(round(start * ratio**i / divisible_by) * divisible_by) for i in range(num)]


def config_from_json(cls, raw: dict, owner: str):
    """Build the config dataclass ``cls`` from ``config.json`` keys (authors' names).

    Missing keys keep the authors' defaults; ``features`` becomes a tuple; keys that
    are neither fields nor generic (``backbone``, ``window_length``) are ignored with a
    warning.
    """
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - fields - _GENERIC_KEYS)
    if unknown:
        warnings.warn(f"{owner} config.json: ignoring unknown keys {unknown}", stacklevel=3)
    kwargs = {k: v for k, v in raw.items() if k in fields}
    if "features" in kwargs:
        kwargs["features"] = tuple(kwargs["features"] or ())
    return cls(**kwargs)


def read_config(path: str, cls, owner: str):
    from . import read_config_json  # the package is imported before this module

    try:
        return config_from_json(cls, read_config_json(path), owner)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{os.path.join(path, 'config.json')}: {exc}") from exc


def read_checkpoint(path: str) -> tuple[dict, dict]:
    """``(params, state)`` trees from ``jax_model/params`` and ``state`` (joblib, or
    safetensors in a converted directory)."""
    return read_model_tree(path, "params"), read_model_tree(path, "state")


# ------------------------------------------------------------------- layers
def sigmoid_gelu(x: jax.Array) -> jax.Array:
    """GELU approximated as ``x * sigmoid(1.702 x)`` (Enformer's activation)."""
    return x * jax.nn.sigmoid(1.702 * x)


def tanh_gelu(x: jax.Array) -> jax.Array:
    """GELU with the tanh approximation (``jax.nn.gelu``'s default; Borzoi's)."""
    return jax.nn.gelu(x, approximate=True)


_W_INIT = hk.initializers.VarianceScaling(1.0, "fan_in", "truncated_normal")


class Conv1D(hk.Module):
    """1-D convolution, channels-last, zero padding ``k // 2`` on both sides (odd k).

    Parameters have the published shapes: ``w`` ``[K, C_in / groups, C_out]`` and
    ``b`` ``[C_out, 1]``. ``groups = C_in`` gives a depthwise convolution.
    """

    def __init__(self, channels: Optional[int], kernel: int, with_bias: bool = True,
                 depthwise: bool = False, name: str = "conv1_d"):
        super().__init__(name=name)
        if kernel % 2 == 0:
            raise ValueError("Conv1D supports odd kernel sizes only")
        self._channels, self._kernel = channels, kernel
        self._with_bias, self._depthwise = with_bias, depthwise

    def __call__(self, x: jax.Array) -> jax.Array:  # [B, T, C_in] -> [B, T, C_out]
        c_in = x.shape[-1]
        c_out = c_in if self._depthwise else self._channels
        groups = c_in if self._depthwise else 1
        w = hk.get_parameter("w", (self._kernel, c_in // groups, c_out), x.dtype, init=_W_INIT)
        pad = self._kernel // 2
        y = jax.lax.conv_general_dilated(
            x, w.astype(x.dtype), window_strides=(1,), padding=[(pad, pad)],
            dimension_numbers=("NWC", "WIO", "NWC"), feature_group_count=groups,
        )
        if self._with_bias:
            b = hk.get_parameter("b", (c_out, 1), x.dtype, init=jnp.zeros)
            y = y + b[:, 0].astype(y.dtype)
        return y


class _MovingAverage(hk.Module):
    """Read-only view of a batch-norm moving average (state ``average``, ``[1, C, 1]``)."""

    def __call__(self, channels: int, init) -> jax.Array:
        avg = hk.get_state("average", (1, channels, 1), jnp.float32, init=init)
        return avg.reshape(channels).astype(jnp.float32)


class BatchNorm(hk.Module):
    """Batch norm in inference mode over the last axis, computed in float32 with the
    moving statistics ``mean_ema`` / ``var_ema``; returns the input's dtype."""

    def __init__(self, eps: float, name: str = "batch_norm"):
        super().__init__(name=name)
        self._eps = eps
        self._mean = _MovingAverage(name="mean_ema")
        self._var = _MovingAverage(name="var_ema")

    def __call__(self, x: jax.Array) -> jax.Array:
        c = x.shape[-1]
        scale = hk.get_parameter("scale", (1, c, 1), jnp.float32, init=jnp.ones).reshape(c)
        offset = hk.get_parameter("offset", (1, c, 1), jnp.float32, init=jnp.zeros).reshape(c)
        mean = self._mean(c, jnp.zeros)
        var = self._var(c, jnp.ones)
        gain = scale.astype(jnp.float32) * jax.lax.rsqrt(var + jnp.float32(self._eps))
        y = (x.astype(jnp.float32) - mean) * gain + offset.astype(jnp.float32)
        return y.astype(x.dtype)


class ConvBlock(hk.Module):
    """Batch norm -> activation -> convolution (``conv_block/{batch_norm,conv1_d}``)."""

    def __init__(self, channels: int, kernel: int, act: Callable, bn_eps: float,
                 name: str = "conv_block"):
        super().__init__(name=name)
        self._channels, self._kernel, self._act, self._eps = channels, kernel, act, bn_eps

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self._act(BatchNorm(self._eps)(x))
        return Conv1D(self._channels, self._kernel)(x)


def max_pool2(x: jax.Array) -> jax.Array:
    """Max pooling, window and stride 2, over the length of ``[B, T, C]`` (T even)."""
    b, t, c = x.shape
    return x.reshape(b, t // 2, 2, c).max(axis=2)


# ----------------------------------------------------- relative position features
def _symmetric(features: jax.Array, distances: jax.Array) -> jax.Array:
    """Append ``sign(distance) * features`` so the encoding tells left from right."""
    return jnp.concatenate([features, jnp.sign(distances)[:, None] * features], axis=-1)


def enformer_position_features(n: int, size: int) -> jax.Array:
    """Enformer's relative-position basis for distances ``-(n-1) .. n-1``: ``[2n-1, size]``.

    Three families (exponential decay, central masks, gamma densities) of ``size / 6``
    functions each of ``|distance|``, then the same times ``sign(distance)``.
    """
    if size % 6:
        raise ValueError(f"Enformer position features: {size} is not divisible by 6")
    per = size // 6
    dist = jnp.arange(-n + 1, n)
    absd = jnp.abs(dist)[:, None]  # [2n-1, 1] int
    half_life = 2 ** jnp.linspace(3.0, math.log(n) / math.log(2.0), per)
    exponential = jnp.exp(-math.log(2.0) / half_life[None, :] * absd)
    widths = 2 ** jnp.arange(1, per + 1).astype(jnp.float32) - 1
    central = (widths[None, :] > absd).astype(jnp.float32)
    gamma = _gamma_features(jnp.abs(dist.astype(jnp.float32))[:, None], per, n)
    return _symmetric(jnp.concatenate([exponential, central, gamma], axis=-1), dist)


def _gamma_features(absd: jax.Array, per: int, n: int, eps: float = 1e-8) -> jax.Array:
    """Gamma densities with means spread over ``n / per .. n``, normalised per row."""
    stddev = n / (2 * per)
    mean = jnp.linspace(n / per, n, per)[None, :]
    shape = (mean / stddev) ** 2
    rate = mean / stddev**2
    log_density = jax.scipy.special.xlogy(shape - 1.0, absd) - rate * absd
    log_density = log_density - (jax.lax.lgamma(shape) - shape * jnp.log(rate))
    density = jnp.exp(log_density) + eps
    return density / jnp.max(density, axis=-1, keepdims=True)


def borzoi_position_features(n: int, size: int) -> jax.Array:
    """Borzoi's relative-position basis: ``size / 2`` central masks whose widths grow
    geometrically up to ``n``, then the same times ``sign(distance)``: ``[2n-1, size]``."""
    if size % 2:
        raise ValueError(f"Borzoi position features: {size} is not divisible by 2")
    per = size // 2
    dist = jnp.arange(-n + 1, n)
    growth = jnp.exp(jnp.log(jnp.float32(n + 1)) / per).astype(jnp.float32)
    widths = jnp.power(growth, jnp.arange(1, per + 1)) - 1
    central = (widths[None, :] > jnp.abs(dist)[:, None]).astype(jnp.float32)
    return _symmetric(central, dist)


POSITION_FEATURES: dict[str, Callable[[int, int], jax.Array]] = {
    "enformer": enformer_position_features,
    "borzoi": borzoi_position_features,
}


def check_position_encoding(owner: str, kind: str, num_features: int) -> None:
    if kind not in POSITION_FEATURES:
        raise ValueError(
            f"{owner} config: positional encoding must be one of {sorted(POSITION_FEATURES)}, got {kind!r}"
        )
    parts = 6 if kind == "enformer" else 2
    if num_features % parts:
        raise ValueError(
            f"{owner} config: {kind} positional encoding needs a number of relative "
            f"position features divisible by {parts}, got {num_features}"
        )


def shift_relative(logits: jax.Array) -> jax.Array:
    """``[..., n, 2n-1]`` logits indexed by distance ``r - (n-1)`` -> ``[..., n, n]``
    indexed by key position: ``out[i, j] = logits[i, j - i + n - 1]``.

    Done with a pad and two reshapes (no gather): after prepending one zero column,
    each row read with stride ``2n - 1`` starts one distance further left.
    """
    *lead, n, r = logits.shape
    padded = jnp.pad(logits, [(0, 0)] * len(lead) + [(0, 0), (1, 0)])  # [..., n, 2n]
    flat = padded.reshape(*lead, n * (r + 1))[..., n:]  # drop n entries: [..., n*(2n-1)]
    return flat.reshape(*lead, n, r)[..., :n]


class RelativeAttention(hk.Module):
    """Multi-head self-attention with learned relative-position logits (Transformer-XL
    style): ``logits = (q + u) . k + shift((q + v) . W_r p)``, q pre-scaled by
    ``key_size ** -0.5``; ``p`` are the fixed position features above."""

    def __init__(self, width: int, heads: int, key_size: int, value_size: int,
                 num_position_features: int, position_features: Callable, softmax_first: bool,
                 name: str = "attention"):
        super().__init__(name=name)
        self._softmax_first = softmax_first
        self._h, self._k, self._v = heads, key_size, value_size
        self._nf, self._features = num_position_features, position_features
        self._q = hk.Linear(heads * key_size, with_bias=False, name="attn_q")
        self._kp = hk.Linear(heads * key_size, with_bias=False, name="attn_k")
        self._vp = hk.Linear(heads * value_size, with_bias=False, name="attn_v")
        self._out = hk.Linear(width, name="attn_o")
        self._rel_k = hk.Linear(heads * key_size, with_bias=False, name="attn_to_rel_k")

    def __call__(self, x: jax.Array) -> jax.Array:  # [B, T, D] -> [B, T, D]
        b, t, _ = x.shape
        h, k = self._h, self._k
        bias_shape = (1, h, 1, k)
        content_bias = hk.get_parameter("rel_content_bias", bias_shape, x.dtype,
                                        init=hk.initializers.RandomNormal())
        position_bias = hk.get_parameter("rel_pos_bias", bias_shape, x.dtype,
                                         init=hk.initializers.RandomNormal())
        q = self._q(x).reshape(b, t, h, k) * jnp.asarray(k**-0.5, x.dtype)  # [B, T, H, K]
        keys = self._kp(x).reshape(b, t, h, k)
        values = self._vp(x).reshape(b, t, h, self._v)
        feats = self._features(t, self._nf).astype(x.dtype)  # [2T-1, NF]
        rel_keys = self._rel_k(feats).reshape(2 * t - 1, h, k)  # [2T-1, H, K]
        as_hk = lambda p: p.reshape(h, k).astype(x.dtype)  # noqa: E731
        content = jnp.einsum("bihd,bjhd->bhij", q + as_hk(content_bias), keys)  # [B, H, T, T]
        relative = jnp.einsum("bihd,rhd->bhir", q + as_hk(position_bias), rel_keys)  # [B, H, T, 2T-1]
        logits = content.astype(jnp.float32) + shift_relative(relative).astype(jnp.float32)
        if self._softmax_first:  # see RelativeTransformerTrunk.softmax_first
            weights = jax.nn.softmax(logits, axis=-1).astype(values.dtype)  # [B, H, T, T]
            out = jnp.einsum("bhts,bshv->bthv", weights, values,
                             preferred_element_type=jnp.float32).astype(values.dtype)
        else:
            out = attend(logits, values)  # [B, T, H, V]
        out = out.reshape(b, t, h * self._v)  # [B, T, H*V]
        return self._out(out)


class RelativeTransformerTrunk(hk.Module):
    """Base of both trunks: the transformer tower (pre-norm attention and ReLU
    feed-forward blocks, each residual) with the published module names."""

    #: Attention read-out: softmax then value product (True), or common.attend's
    #: normalise-after (False). Same result to float32 rounding; XLA's CPU speed differs
    #: by trunk (A/B against the authors' forward, golden tiny configurations, 8 x 8,192
    #: bp, medians of 15: Enformer 1.03-1.04x softmax-first vs 0.85-0.88x, Borzoi
    #: 1.03-1.04x normalise-after vs 0.98-1.00x). Subclasses set it.
    softmax_first = False

    def __init__(self, *, name: str, width: int, num_layers: int, heads: int, key_size: int,
                 num_position_features: int, position_encoding: str, ln_eps: float):
        super().__init__(name=name)
        self._width, self._layers, self._heads, self._key = width, num_layers, heads, key_size
        self._nf = num_position_features
        self._pos = POSITION_FEATURES[position_encoding]
        self._ln_eps = ln_eps

    def _transformer_attention(self, x: jax.Array, i: int) -> jax.Array:
        with hk.name_scope(f"layer_{i}"):
            norm = LayerNorm32("attn_layer_norm", self._ln_eps)
            attn = RelativeAttention(self._width, self._heads, self._key, self._width // self._heads,
                                     self._nf, self._pos, self.softmax_first)
        return x + attn(norm(x))

    def _transformer_ffn_block(self, x: jax.Array, i: int) -> jax.Array:
        with hk.name_scope(f"layer_{i}"):
            norm = LayerNorm32("ffn_layer_norm", self._ln_eps)
            up = hk.Linear(2 * self._width, name="ffn_1")
            down = hk.Linear(self._width, name="ffn_2")
        return x + down(jax.nn.relu(up(norm(x))))

    def transformer_tower(self, x: jax.Array) -> jax.Array:  # [B, T, D]
        for i in range(self._layers):
            x = self._transformer_attention(x, i)
            x = self._transformer_ffn_block(x, i)
        return x


# ------------------------------------------------------------- model and loading
class OneHotSegmentationModel(SegmentationModel):
    """A loaded SegmentEnformer/SegmentBorzoi model (one token per base).

    Subclasses set ``display_name`` and implement ``length_rule`` -> ``(multiple,
    minimum)`` and :meth:`output_span`.
    """

    display_name = "model"

    def __init__(self, cfg, **kwargs):
        self.config = cfg
        super().__init__(**kwargs)

    def length_rule(self) -> tuple[int, int]:
        raise NotImplementedError

    def tokenize(self, seqs) -> np.ndarray:
        return tokenize([seqs] if isinstance(seqs, str) else seqs, self.display_name)

    def check_length(self, length: int) -> None:
        multiple, minimum = self.length_rule()
        if length % multiple == 0 and length >= minimum:
            return
        lower = length // multiple * multiple
        upper = max(minimum, -(-length // multiple) * multiple)
        near = [v for v in (lower, upper) if v >= minimum and v != length]
        at_least = f" of at least {minimum:,}" if minimum > multiple else ""
        raise ValueError(
            f"{self.display_name} windows must be a multiple of {multiple} bases{at_least}, "
            f"got {length}; e.g. use {' or '.join(str(v) for v in dict.fromkeys(near))}"
        )


def expected_shapes(transformed, probe_length: int) -> tuple[dict, dict]:
    probe = jnp.full((1, probe_length), FIRST_BASE_TOKEN, dtype=jnp.int32)
    return jax.eval_shape(lambda: transformed.init(jax.random.PRNGKey(0), probe))


def random_tree(transformed, probe_length: int, seed: int = 0) -> tuple[dict, dict]:
    """Random parameters and state with the published names and shapes, made without
    running the model (benchmarks, tests). Weights ~ N(0, 1/fan_in), biases and offsets
    0, scales and moving variances 1, moving means 0."""
    params_spec, state_spec = expected_shapes(transformed, probe_length)
    rng = np.random.default_rng(seed)
    params = {}
    for mod, leaves in params_spec.items():
        params[mod] = {}
        for name, spec in leaves.items():
            shape = tuple(spec.shape)
            if name == "w":
                fan_in = int(np.prod(shape[:-1])) or 1
                arr = rng.standard_normal(shape) / np.sqrt(fan_in)
            elif name == "scale":
                arr = np.ones(shape)
            elif name.startswith("rel_"):
                arr = rng.standard_normal(shape) * 0.1
            else:
                arr = np.zeros(shape)
            params[mod][name] = arr.astype(np.float32)
    state = {
        mod: {name: (np.ones if "var_ema" in mod else np.zeros)(tuple(s.shape), np.float32)
              for name, s in leaves.items()}
        for mod, leaves in state_spec.items()
    }
    return params, state


def make_model(model_cls, cfg, transformed, params_tree: dict, state_tree: dict, *,
               probe_length: int, backbone: str, compute_dtype: str, window_length: int,
               source: str):
    """Check the trees against the configuration and wrap them in ``model_cls``."""
    dtype = resolve_dtype(compute_dtype)
    params_spec, state_spec = expected_shapes(transformed, probe_length)
    params = select_tree(params_tree, params_spec, source, "params.joblib")
    state = select_tree(state_tree, state_spec, source, "state.joblib")
    params = cast_params(params, dtype, is_norm_module)

    def forward(params, state, tokens):
        out, _ = transformed.apply(params, state, tokens)
        return out

    model = model_cls(cfg, backbone=backbone, features=cfg.features, window_length=window_length,
                      forward=forward, params=params, state=state, compute_dtype=compute_dtype)
    model.check_length(int(window_length))
    return model


def segmentation_head(cfg, bases_per_token: int) -> UNetHead:
    return UNetHead(len(cfg.features), cfg.embed_dim, bases_per_token=bases_per_token, name=HEAD)
