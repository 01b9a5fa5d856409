"""Pieces shared by the three backbones: activations, float32 norms, the U-Net head.

Shape glossary used in comments across ``genoseg.models``:

- ``B``: batch size (windows per call)
- ``L``: input length in bases
- ``T``: trunk tokens (``L / bases_per_token``; SegmentNT adds one CLS token)
- ``D``: embedding width; ``H``: attention heads; ``K``: key size per head
- ``F``: number of predicted features
"""

from __future__ import annotations

from typing import Callable, Sequence

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import CheckpointError

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "gelu": lambda x: jax.nn.gelu(x, approximate=True),
    "gelu-no-approx": lambda x: jax.nn.gelu(x, approximate=False),
    "relu": jax.nn.relu,
    "swish": jax.nn.swish,
    "silu": jax.nn.silu,
    "sin": jnp.sin,
}


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; supported: {', '.join(sorted(ACTIVATIONS))}"
        ) from None


def attend(logits: jax.Array, values: jax.Array) -> jax.Array:
    """Softmax attention read-out: ``softmax(logits) @ values`` per head.

    ``logits`` ``[B, H, T, S]`` (float32, already scaled), ``values`` ``[B, S, H, V]``;
    returns ``[B, T, H, V]`` in the values' dtype. The softmax is normalised *after*
    the weighted sum (``exp(l - max) @ v / sum(exp(l - max))``): the division then
    touches ``[B, T, H, V]`` instead of the ``[B, H, T, S]`` weights, one full pass
    over the T x S matrix less, and XLA's CPU backend no longer fuses scale, softmax
    and the second product into one slow fusion (1.17-1.25x faster forward for the
    4-layer width-256 SegmentNT at 6 kb, same result to float32 rounding).
    """
    m = jax.lax.stop_gradient(logits.max(axis=-1, keepdims=True))  # [B, H, T, 1]
    e = jnp.exp(logits - m)  # [B, H, T, S] float32
    total = jnp.swapaxes(e.sum(axis=-1, keepdims=True), 1, 2)  # [B, T, H, 1]
    out = jnp.einsum("bhts,bshv->bthv", e.astype(values.dtype), values,
                     preferred_element_type=jnp.float32)  # [B, T, H, V]
    return (out / total).astype(values.dtype)


class LayerNorm32(hk.LayerNorm):
    """``hk.LayerNorm`` (scale and offset) computed in float32 whatever the compute
    dtype: bfloat16 norms drift. Returns the input's dtype."""

    def __init__(self, name: str, eps: float = 1e-5):
        super().__init__(axis=-1, create_scale=True, create_offset=True, eps=eps, name=name)

    def __call__(self, x: jax.Array) -> jax.Array:
        return super().__call__(x.astype(jnp.float32)).astype(x.dtype)


class _ConvBlock(hk.Module):
    """Two same-padded kernel-3 convolutions (``conv0``, ``conv1``) created in
    ``__init__`` so the parameter names match the published ``.../~/conv0``."""

    def __init__(self, channels: int, name: str, transpose: bool = False,
                 last_activation: bool = True):
        super().__init__(name=name)
        conv, prefix = (hk.Conv1DTranspose, "conv_transpose") if transpose else (hk.Conv1D, "conv")
        self._convs = [conv(channels, 3, padding="SAME", name=f"{prefix}{j}") for j in range(2)]
        self._last_activation = last_activation

    def __call__(self, x: jax.Array) -> jax.Array:
        x = jax.nn.swish(self._convs[0](x))
        x = self._convs[1](x)
        return jax.nn.swish(x) if self._last_activation else x


class _UNet1D(hk.Module):
    """1-D U-Net: conv blocks with average-pool downsampling, nearest upsampling and
    skip connections, then a final conv block. Length must be divisible by
    ``2 ** len(channels)``."""

    def __init__(self, out_channels: int, channels: Sequence[int], name: str):
        super().__init__(name=name)
        self._down = [_ConvBlock(c, f"downsample_block_{i}") for i, c in enumerate(channels)]
        self._up = [
            _ConvBlock(c, f"upsample_block_{i}", transpose=True)
            for i, c in enumerate(reversed(tuple(channels)))
        ]
        self._final = _ConvBlock(out_channels, "final_conv1_d", last_activation=False)

    def __call__(self, x: jax.Array) -> jax.Array:  # [B, T, C] -> [B, T, out]
        skips = []
        for block in self._down:
            x = block(x)
            skips.append(x)
            b, t, c = x.shape
            x = x.reshape(b, t // 2, 2, c).mean(axis=2)  # average pool, window 2
        for block, skip in zip(self._up, reversed(skips)):
            x = jnp.repeat(block(x), 2, axis=1) + skip  # nearest-neighbour x2
        return self._final(x)


class UNetHead(hk.Module):
    """Segmentation head: trunk tokens -> per-base logits of (absent, present).

    Args:
        num_features: F, features predicted per base.
        embed_dim: width D that sets the U-Net channels (D, 2D, ...), as in the
            published heads (not necessarily the width of the input).
        bases_per_token: bases each trunk token stands for (6 for SegmentNT's 6-mers,
            ``dim_divisible_by`` for Enformer/Borzoi).
        num_levels: U-Net depth (2 in every published model).
    """

    def __init__(self, num_features: int, embed_dim: int, bases_per_token: int,
                 num_levels: int = 2, name: str = "u_net_head"):
        super().__init__(name=name)
        self._f = num_features
        self._bpt = bases_per_token
        self._num_levels = num_levels
        self._unet = _UNet1D(
            out_channels=embed_dim,
            channels=[embed_dim * 2**i for i in range(num_levels)],
            name="unet1_d_segmentation_head",
        )
        self._fc = hk.Linear(bases_per_token * 2 * num_features, name="fc")

    def __call__(self, x: jax.Array) -> jax.Array:  # [B, T, C] -> [B, T*bpt, F, 2]
        b, t, _ = x.shape
        if t % (2**self._num_levels):
            raise ValueError(f"head input of {t} tokens is not divisible by {2**self._num_levels}")
        y = self._fc(jax.nn.swish(self._unet(x)))
        return y.reshape(b, t * self._bpt, self._f, 2)


def cast_params(tree: dict, dtype, keep_float32: Callable[[str], bool]) -> dict:
    """Cast float leaves of ``{module: {name: array}}`` to ``dtype``, except modules for
    which ``keep_float32(module_name)`` is true (norms stay in float32)."""
    out = {}
    for mod, leaves in tree.items():
        keep = keep_float32(mod)
        out[mod] = {
            k: (v if keep or not jnp.issubdtype(v.dtype, jnp.floating) else v.astype(dtype, copy=False))
            for k, v in leaves.items()
        }
    return out


def select_tree(tree: dict, expected: dict, source: str, what: str,
                implied_by: str = "the configuration implies") -> dict:
    """The entries of ``tree`` named in ``expected`` (a haiku shape tree), checking that
    each exists with the expected shape; extra modules (e.g. unused heads) are ignored."""
    out = {}
    for mod, leaves in expected.items():
        if mod not in tree:
            raise CheckpointError(f"{source}: {what} lacks module '{mod}'")
        out[mod] = {}
        for name, spec in leaves.items():
            arr = tree[mod].get(name)
            if arr is None or tuple(arr.shape) != tuple(spec.shape):
                got = None if arr is None else tuple(arr.shape)
                raise CheckpointError(
                    f"{source}: {what} entry {mod}/{name} has shape {got}, {implied_by} "
                    f"{tuple(spec.shape)}"
                )
            out[mod][name] = np.asarray(arr)
    return out


def is_norm_module(module_name: str) -> bool:
    leaf = module_name.rsplit("/", 1)[-1]
    return "norm" in leaf or "batch_norm" in module_name
