"""SegmentNT: Nucleotide Transformer v2 encoder + 1-D U-Net segmentation head.

Published layout (``InstaDeepAI/segment_nt`` and ``segment_nt_multi_species``)::

    jax_model/hyperparams.json    encoder hyperparameters and the feature list
    jax_model/pytree_ckpt.joblib  {module: {param: array}}; encoder under
                                  ``dcnuc_v2_500M_multi_species/``, head under
                                  ``u_net_head/`` (plus an unused LM head)

Input: A/C/G/T only (either case), length a multiple of 24 bases (6-mer tokens, and
the token count divisible by 4 for the head's two downsamplings). Output covers every
input base.

Rotary rescaling, the authors' recipe (``docs/segment_nt.md`` and the inference notebook
of instadeepai/nucleotide-transformer): SegmentNT was trained on 30 kb windows, 5,001
tokens counting the CLS token, with the ``rescaling_factor`` of ``hyperparams.json``
(5000/2048 in the published checkpoints). Windows up to that length keep the training
value; a longer window of ``L`` bases uses ``(L/6 + 1) / 2048``, its token count *with*
the CLS token over the 2,048 positions of the NT backbone (6669/2048 at 40,008 bp):
:func:`rescaling_factor_for_length`. ``load_model`` applies this per window length
unless a ``rescaling_factor`` is given (which is then used for every length). The model
generalises to about 50 kb.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional, Sequence

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from ..checkpoint import read_model_tree
from ..errors import CheckpointError
from ..jsonfile import read_json
from .base import SegmentationModel, encode_bases, resolve_dtype
from .common import LayerNorm32, UNetHead, activation, attend, cast_params, is_norm_module, select_tree

TRUNK = "dcnuc_v2_500M_multi_species"
HEAD = "u_net_head"
NT_MAX_TOKENS = 2048  # positions the NT backbone was pre-trained on
TRAINING_WINDOW = 30_000
NUCLEOTIDES = "ATCG"  # the authors' k-mer vocabulary order
NUM_SPECIAL_TOKENS = 6  # <unk> <pad> <mask> <cls> <eos> <bos>
CLS_ID = 3
ROTARY_BASE = 10_000.0
ATTENTION_IMPLS = ("auto", "einsum", "dot_product")
# CLS + 4 tokens: the smallest input the head takes; enough to derive parameter shapes.
_PROBE = np.zeros((1, 1 + 4), dtype=np.int32)


TRAINING_FACTOR = (TRAINING_WINDOW // 6) / NT_MAX_TOKENS  # 5000/2048, as published


def rescaling_factor_for_length(length: int, k: int = 6,
                                training_factor: Optional[float] = TRAINING_FACTOR) -> Optional[float]:
    """The authors' rotary rescaling for windows of ``length`` bases: ``training_factor``
    up to the training length (30 kb: 5,001 tokens with CLS), beyond it the token count
    including the CLS token over 2,048: ``(length // k + 1) / 2048``."""
    tokens = length // k + 1  # the authors count the CLS token
    if tokens <= TRAINING_WINDOW // k + 1:
        return training_factor
    return tokens / NT_MAX_TOKENS


@dataclasses.dataclass(frozen=True)
class SegmentNTConfig:
    """Encoder + head hyperparameters, as read from ``hyperparams.json``."""

    features: tuple[str, ...]
    embed_dim: int
    attention_heads: int
    ffn_embed_dim: int
    num_layers: int
    k_for_kmers: int = 6
    key_dim: Optional[int] = None
    use_glu_in_ffn: bool = False
    ffn_activation_name: str = "gelu-no-approx"
    add_bias_ffn: bool = True
    add_bias_kv: bool = False
    use_rotary_embedding: bool = False
    rescaling_factor: Optional[float] = None
    positional_embedding: Optional[str] = "learned"
    emb_layer_norm_before: bool = False
    embed_scale: float = 1.0
    token_dropout: bool = False
    masking_ratio: float = 0.0
    masking_prob: float = 0.0
    pre_layer_norm: bool = True
    layer_norm_eps: float = 1e-5
    max_positions: int = 2048

    def __post_init__(self):
        if not self.features:
            raise ValueError("SegmentNT config lists no features")
        for name in ("embed_dim", "attention_heads", "ffn_embed_dim", "num_layers", "k_for_kmers"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"SegmentNT config: {name} must be positive")
        if self.key_dim is None and self.embed_dim % self.attention_heads:
            raise ValueError("SegmentNT config: embed_dim must be divisible by attention_heads")
        activation(self.ffn_activation_name)  # raises for unknown names
        if not self.use_rotary_embedding:
            raise ValueError(
                "SegmentNT config without rotary embeddings is not supported: every "
                "published SegmentNT checkpoint uses them (use_rotary_embedding: true)"
            )
        if self.rescaling_factor is not None and self.rescaling_factor <= 0:
            raise ValueError(f"rescaling_factor must be positive, got {self.rescaling_factor}")
        if self.positional_embedding is not None:
            raise ValueError(
                f"positional_embedding is {self.positional_embedding!r} (a missing key means 'learned' to the "
                "authors' loader): only rotary embeddings (positional_embedding: null) are implemented, as in "
                "every published SegmentNT checkpoint")

    @property
    def key_size(self) -> int:
        return self.key_dim or self.embed_dim // self.attention_heads

    @property
    def vocab_size(self) -> int:
        return NUM_SPECIAL_TOKENS + 4**self.k_for_kmers + 5

    @classmethod
    def from_hyperparams(cls, hp: dict) -> "SegmentNTConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in hp.items() if k in fields and v is not None or k == "positional_embedding"}
        kwargs = {k: v for k, v in kwargs.items() if k in fields}
        kwargs["features"] = tuple(hp.get("features") or ())
        return cls(**kwargs)


# --------------------------------------------------------------------------- model
def _rotary(x: jax.Array, inv_freq: jax.Array) -> jax.Array:
    """Rotate query/key heads ``[B, T, H, K]`` by position (computed in float32)."""
    t = jnp.arange(x.shape[1], dtype=jnp.float32)
    freqs = t[:, None] * inv_freq[None, :]  # [T, K/2]
    emb = jnp.concatenate([freqs, freqs], axis=-1)[None, :, None, :]  # [1, T, 1, K]
    xf = x.astype(jnp.float32)
    half = x.shape[-1] // 2
    rotated = jnp.concatenate([-xf[..., half:], xf[..., :half]], axis=-1)
    return (xf * jnp.cos(emb) + rotated * jnp.sin(emb)).astype(x.dtype)


def _attention(q, k, v, impl: str) -> jax.Array:
    """Softmax attention over ``[B, T, H, K]`` heads; returns ``[B, T, H, K]``."""
    scale = 1.0 / np.sqrt(q.shape[-1])
    if impl == "einsum":
        # Scaling q ([B, T, H, K]) instead of the logits ([B, H, T, T]) saves a full
        # pass over the T x T matrix; see common.attend for the rest.
        q = q * jnp.asarray(scale, q.dtype)
        logits = jnp.einsum("bthk,bshk->bhts", q, k, preferred_element_type=jnp.float32)  # [B, H, T, T]
        return attend(logits, v)
    on_gpu = jax.default_backend() == "gpu" and q.dtype in (jnp.bfloat16, jnp.float16)
    return jax.nn.dot_product_attention(
        q, k, v, scale=scale, implementation="cudnn" if on_gpu else None
    )


class _SelfAttention(hk.Module):
    def __init__(self, cfg: SegmentNTConfig, inv_freq: np.ndarray, impl: str, name: str):
        super().__init__(name=name)
        self._cfg, self._inv_freq, self._impl = cfg, inv_freq, impl

    def __call__(self, x: jax.Array) -> jax.Array:  # [B, T, D]
        c = self._cfg
        b, t, _ = x.shape
        heads = lambda n: hk.Linear(c.attention_heads * c.key_size, name=n)(x).reshape(  # noqa: E731
            b, t, c.attention_heads, c.key_size)
        q, k, v = heads("query"), heads("key"), heads("value")  # [B, T, H, K]
        if c.add_bias_kv:
            bias_k = hk.get_parameter("bias_k", [1, 1, c.attention_heads, c.key_size], init=jnp.zeros)
            bias_v = hk.get_parameter("bias_v", [1, 1, c.attention_heads, c.key_size], init=jnp.zeros)
            k = jnp.concatenate([k, jnp.broadcast_to(bias_k, (b, 1) + k.shape[2:]).astype(k.dtype)], axis=1)
            v = jnp.concatenate([v, jnp.broadcast_to(bias_v, (b, 1) + v.shape[2:]).astype(v.dtype)], axis=1)
        inv_freq = jnp.asarray(self._inv_freq, dtype=jnp.float32)
        # The authors rotate the appended bias key as if it were position T (same here).
        q, k = _rotary(q, inv_freq), _rotary(k, inv_freq)
        out = _attention(q, k, v, self._impl).reshape(b, t, -1)  # [B, T, H*K]
        return hk.Linear(c.embed_dim, name="mha_output")(out)


class _Layer(hk.Module):
    def __init__(self, cfg: SegmentNTConfig, inv_freq, impl: str, name: str):
        super().__init__(name=name)
        self._cfg = cfg
        ffn = cfg.ffn_embed_dim * (2 if cfg.use_glu_in_ffn else 1)
        self._fc1 = hk.Linear(ffn, with_bias=cfg.add_bias_ffn, name="fc1")
        self._fc2 = hk.Linear(cfg.embed_dim, with_bias=cfg.add_bias_ffn, name="fc2")
        self._ln_attn = LayerNorm32("self_attention_layer_norm", cfg.layer_norm_eps)
        self._ln_mlp = LayerNorm32("final_layer_norm", cfg.layer_norm_eps)
        self._attn = _SelfAttention(cfg, inv_freq, impl, name="self_attention")
        self._act = activation(cfg.ffn_activation_name)

    def _mlp(self, x: jax.Array) -> jax.Array:
        h = self._fc1(x)  # [B, T, FFN] (x2 with GLU)
        if self._cfg.use_glu_in_ffn:
            h1, h2 = jnp.split(h, 2, axis=-1)
            h = self._act(h1) * h2
        else:
            h = self._act(h)
        return self._fc2(h)

    def __call__(self, x: jax.Array) -> jax.Array:  # [B, T, D]
        if self._cfg.pre_layer_norm:
            x = x + self._attn(self._ln_attn(x))
            return x + self._mlp(self._ln_mlp(x))
        x = self._ln_attn(x + self._attn(x))
        return self._ln_mlp(x + self._mlp(x))


class _LMHeadNorm(hk.Module):
    """The LM head's first layer norm, the only part of it SegmentNT uses."""

    def __init__(self, eps: float):
        super().__init__(name="roberta_lm_head")
        self._ln = LayerNorm32("emb_layer_norm_after", eps)

    def __call__(self, x):
        return self._ln(x)


class _Encoder(hk.Module):
    def __init__(self, cfg: SegmentNTConfig, inv_freq, impl: str):
        super().__init__(name=TRUNK)
        self._cfg, self._inv_freq, self._impl = cfg, inv_freq, impl
        self._embed = hk.Embed(cfg.vocab_size, cfg.embed_dim, name="embed")
        self._ln_before = LayerNorm32("emb_layer_norm_before", cfg.layer_norm_eps) if cfg.emb_layer_norm_before else None
        self._ln_after = _LMHeadNorm(cfg.layer_norm_eps)

    def __call__(self, tokens: jax.Array, dtype) -> jax.Array:  # [B, T] -> [B, T, D]
        c = self._cfg
        x = self._embed(tokens).astype(dtype)
        if c.token_dropout:
            # Inference-time rescaling of the authors' token dropout (no mask tokens).
            x = x * (1.0 - c.masking_ratio * c.masking_prob)
        x = c.embed_scale * x
        if self._ln_before is not None:
            x = self._ln_before(x)
        for i in range(c.num_layers):
            x = _Layer(c, self._inv_freq, self._impl, name=f"attention_layer_{i}")(x)
        return self._ln_after(x)


def inverse_frequencies(key_size: int, rescaling_factor: Optional[float]) -> np.ndarray:
    """Rotary inverse frequencies; a rescaling factor ``s`` raises the base to
    ``10000 * s ** (K / (K - 2))`` (NTK-aware scaling, as the authors do)."""
    base = ROTARY_BASE
    if rescaling_factor is not None:
        base = ROTARY_BASE * rescaling_factor ** (key_size / (key_size - 2))
    exponents = np.arange(0, key_size, 2, dtype=np.float32) / np.float32(key_size)
    return (1.0 / (np.float32(base) ** exponents)).astype(np.float32)


def build_forward(cfg: SegmentNTConfig, rescaling_factor: Optional[float], dtype, attention: str,
                  per_length: bool = False):
    """Haiku-transformed forward: tokens ``[B, T+1]`` (CLS first) -> logits ``[B, 6T, F, 2]``.
    With ``per_length`` the rotary factor follows each input length
    (:func:`rescaling_factor_for_length`, ``rescaling_factor`` being the training value)."""
    if attention not in ATTENTION_IMPLS:
        raise ValueError(f"attention must be one of {ATTENTION_IMPLS}, got {attention!r}")
    impl = attention
    if impl == "auto":
        # GPU: jax.nn.dot_product_attention (cuDNN's fused kernel in bfloat16, XLA's own
        # in float32) beat the einsum path on an H200 at 30 kb x 8 (float32 0.74 vs
        # 0.87 s, bfloat16 0.14 vs 0.78 s); the CPU einsum graph is the faster one there.
        impl = "dot_product" if jax.default_backend() == "gpu" else "einsum"
    def forward(tokens):
        k = cfg.k_for_kmers
        scale = (rescaling_factor_for_length((tokens.shape[1] - 1) * k, k, rescaling_factor) if per_length
                 else rescaling_factor)  # shapes are static: one factor per compiled length
        emb = _Encoder(cfg, inverse_frequencies(cfg.key_size, scale), impl)(tokens, dtype)  # [B, T+1, D]
        head = UNetHead(len(cfg.features), cfg.embed_dim, bases_per_token=cfg.k_for_kmers, name=HEAD)
        return head(emb[:, 1:])  # drop CLS -> [B, 6T, F, 2]

    return hk.without_apply_rng(hk.transform(forward))


# --------------------------------------------------------------------- tokenizer
def tokenize(seqs: Sequence[str], k: int = 6) -> np.ndarray:
    """The authors' k-mer tokenizer for A/C/G/T windows: ``[B, L/k + 1]`` int32 ids,
    CLS (3) first, k-mer ids ``6 + index`` in ``itertools.product('ATCG', repeat=k)``
    order. Lower case is read as upper case."""
    codes = encode_bases(list(seqs), NUCLEOTIDES,
                         "SegmentNT accepts only A, C, G and T (split windows at N runs)")
    b, length = codes.shape
    if length % k:
        raise ValueError(f"sequence length {length} is not a multiple of k={k}")
    weights = (4 ** np.arange(k - 1, -1, -1)).astype(np.int32)
    ids = codes.reshape(b, length // k, k).astype(np.int32) @ weights + NUM_SPECIAL_TOKENS
    return np.concatenate([np.full((b, 1), CLS_ID, np.int32), ids.astype(np.int32)], axis=1)


# ------------------------------------------------------------------------ loader
class SegmentNT(SegmentationModel):
    """Loaded SegmentNT model; see :class:`~genoseg.models.base.SegmentationModel`."""

    def __init__(self, cfg: SegmentNTConfig, rescaling_factor: Optional[float], per_length: bool = False,
                 **kwargs):
        self.config = cfg
        self.rescaling_factor = rescaling_factor  # training value when per_length
        self._per_length = per_length
        super().__init__(**kwargs)

    def rescaling_factor_at(self, length: int) -> Optional[float]:
        """The rotary factor used for windows of ``length`` bases."""
        if not self._per_length:
            return self.rescaling_factor
        return rescaling_factor_for_length(length, self.config.k_for_kmers, self.rescaling_factor)

    @property
    def length_multiple(self) -> int:
        return self.config.k_for_kmers * 4

    def check_length(self, length: int) -> None:
        m = self.length_multiple
        if length % m:
            raise ValueError(
                f"SegmentNT windows must be a multiple of {m} bases, got {length}; "
                f"e.g. use {length // m * m} or {(length // m + 1) * m}"
            )

    def tokenize(self, seqs) -> np.ndarray:
        return tokenize(seqs if not isinstance(seqs, str) else [seqs], self.config.k_for_kmers)

    def output_span(self, length: int) -> tuple[int, int]:
        return (0, int(length))


def read_hyperparams(path: str) -> dict:
    return read_json(os.path.join(path, "jax_model", "hyperparams.json"),
                     "SegmentNT hyperparameters (jax_model/hyperparams.json)", CheckpointError)


def load(path: str, backbone: str = "segment_nt", rescaling_factor: Optional[float] = None,
         compute_dtype: str = "float32", attention: str = "auto",
         window_length: int = TRAINING_WINDOW) -> SegmentNT:
    """Load a SegmentNT checkpoint directory (published layout).

    Args:
        path: directory holding ``jax_model/hyperparams.json`` and ``pytree_ckpt.joblib``.
        rescaling_factor: rotary rescaling used at inference for every length;
            ``None``: the authors' recipe per window length (the training value from
            ``hyperparams.json`` up to 30 kb, see :func:`rescaling_factor_for_length`).
        compute_dtype: ``"float32"`` or ``"bfloat16"`` (layer norms stay float32).
        attention: ``"auto"`` (``dot_product`` on GPU: cuDNN's fused kernel with bfloat16,
            XLA's with float32; ``einsum`` on CPU), ``"einsum"`` or ``"dot_product"``.
    """
    hp = read_hyperparams(path)
    try:
        cfg = SegmentNTConfig.from_hyperparams(hp)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}/jax_model/hyperparams.json: {exc}") from exc
    tree = read_model_tree(path, "pytree_ckpt")
    return build_model(cfg, tree, backbone=backbone, rescaling_factor=rescaling_factor,
                       compute_dtype=compute_dtype, attention=attention,
                       window_length=window_length, source=path)


def build_model(cfg: SegmentNTConfig, tree: dict, *, backbone: str = "segment_nt",
                rescaling_factor: Optional[float] = None, compute_dtype: str = "float32",
                attention: str = "auto", window_length: int = TRAINING_WINDOW,
                source: str = "<memory>") -> SegmentNT:
    """Build a model from a config and a ``{module: {param: array}}`` tree (names as
    published). ``tree`` may hold extra modules (the unused LM head)."""
    dtype = resolve_dtype(compute_dtype)
    scale = cfg.rescaling_factor if rescaling_factor is None else float(rescaling_factor)
    if scale is not None and scale <= 0:
        raise ValueError(f"rescaling_factor must be positive, got {scale}")
    transformed = build_forward(cfg, scale, dtype, attention, per_length=rescaling_factor is None)
    params = _select_params(tree, transformed, source)
    params = cast_params(params, dtype, is_norm_module)

    def forward(params, state, tokens):
        return transformed.apply(params, tokens)

    return SegmentNT(cfg, scale, per_length=rescaling_factor is None, backbone=backbone,
                     features=cfg.features, window_length=window_length, forward=forward, params=params, state={},
                     compute_dtype=compute_dtype)


def random_params(cfg: SegmentNTConfig, seed: int = 0) -> dict:
    """Randomly initialised parameters with the published names (benchmarks, training)."""
    transformed = build_forward(cfg, cfg.rescaling_factor, jnp.float32, "einsum")
    params = transformed.init(jax.random.PRNGKey(seed), _PROBE)
    return {mod: {k: np.asarray(v) for k, v in leaves.items()} for mod, leaves in params.items()}


def _select_params(tree: dict, transformed, path: str) -> dict:
    """Keep the checkpoint entries the model uses, checking names and shapes."""
    expected = jax.eval_shape(lambda: transformed.init(jax.random.PRNGKey(0), _PROBE))
    return select_tree(tree, expected, path, "checkpoint", "the hyperparameters imply")