"""A fake, fast segmentation model with the genoseg model API (for plumbing tests).

Its output for a window depends on the bases around each position (a fixed random
9-bp convolution) and on the position within the window, so overlap merging and
chunking are exercised, but it runs orders of magnitude faster than a real model.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from genoseg.models.base import as_batch, encode_bases

FEATURES = ["protein_coding_gene", "lncRNA", "exon", "intron", "splice_donor", "splice_acceptor",
            "5UTR", "3UTR", "CTCF-bound", "polyA_signal", "enhancer_Tissue_specific",
            "enhancer_Tissue_invariant", "promoter_Tissue_specific", "promoter_Tissue_invariant"]


class FakeModel:
    """Model API stand-in.

    ``backbone="segment_nt"``: A/C/G/T only, lengths multiple of ``length_multiple``,
    output covers the whole input. ``backbone="segment_enformer"`` / ``"segment_borzoi"``:
    N allowed; ``crop`` bases at each end are context only (Borzoi-like when > 0).
    """

    def __init__(self, backbone: str = "segment_nt", window_length: int = 192, features=None,
                 length_multiple: int = 24, crop: int = 0, seed: int = 0):
        self.backbone = backbone
        self.features = list(features or FEATURES)
        self.window_length = int(window_length)
        self.length_multiple = int(length_multiple)
        self.allows_n = not backbone.startswith("segment_nt")
        self.crop = int(crop)
        self.compute_dtype = "float32"
        rng = np.random.default_rng(seed)
        F = len(self.features)
        self._w = jnp.asarray(rng.normal(size=(9, 5, F)).astype(np.float32) * 0.7)
        self._b = jnp.asarray(rng.normal(size=(F,)).astype(np.float32))
        crop_ = self.crop

        def probs(w, b, tokens):
            x = jax.nn.one_hot(tokens, 5, dtype=jnp.float32)[..., :4]  # N -> zeros
            x = jnp.pad(x, ((0, 0), (4, 4), (0, 1)))
            L = tokens.shape[1]
            h = sum(jnp.einsum("blc,cf->blf", x[:, k:k + L], w[k]) for k in range(9))
            pos = jnp.sin(jnp.pi * (jnp.arange(L, dtype=jnp.float32) + 0.5) / L)[None, :, None]
            out = jax.nn.sigmoid(h + b + 1.5 * pos - 0.75)
            return out[:, crop_:L - crop_]

        self._fn = jax.jit(probs)

    def check_length(self, length: int) -> None:
        if length % self.length_multiple or length <= 2 * self.crop:
            raise ValueError(f"fake model: bad length {length}")

    def output_span(self, length: int) -> tuple[int, int]:
        return (self.crop, int(length) - self.crop)

    def tokenize(self, seqs: Sequence[str]) -> np.ndarray:
        seqs = as_batch(seqs)
        allowed = "ACGTN" if self.allows_n else "ACGT"
        return encode_bases(seqs, allowed, "fake model").astype(np.int32)

    def predict_tokens(self, tokens: np.ndarray):
        return self._fn(self._w, self._b, jnp.asarray(tokens, jnp.int32))

    def predict_async(self, seqs):
        seqs = as_batch(seqs)
        self.check_length(len(seqs[0]))
        return self.predict_tokens(self.tokenize(seqs))

    def predict(self, seqs) -> np.ndarray:
        return np.asarray(self.predict_async(seqs))


class ReplayModel(FakeModel):
    """A model that computes nothing, so that ``predict_chunk`` runs at the speed of its
    host side alone (read, tokenise, merge, quantise, Parquet encode): the rate a GPU
    would have to beat to leave the host as the limit
    (``benchmarks/bench_predict.py --host-rate``).

    ``pattern``: ``"noise"`` (one precomputed batch of uniform random probabilities,
    the costliest to encode), ``"constant"`` (one value per feature, the cheapest) or
    ``"track"``: each window gets its own slice of ``track`` (uint8 codes ``[G, F]`` of
    the one contig ``sequence``, positions 0-based), so overlapping windows agree and the
    merged output is the track itself. A window is found from the 32 bases at its
    middle (``windows``: ``(input start, length)`` of those it will see); the slice is copied
    when the engine reads the result, on its watcher thread, as a GPU result would be.
    """

    KEY = 32

    def __init__(self, pattern: str = "noise", track=None, sequence: str = "", windows=(), **kwargs):
        super().__init__(**kwargs)
        if pattern not in ("noise", "constant", "track"):
            raise ValueError(f"pattern {pattern!r}: noise, constant or track")
        self.pattern = pattern
        self._outputs: dict[tuple, jax.Array] = {}
        if pattern == "track":
            pad = self._pad = self.window_length  # windows may reach past the contig ends (N)
            self._track = np.pad(np.asarray(track, np.uint8), ((pad, pad), (0, 0)))
            seq = "N" * pad + sequence + "N" * pad
            mids = [pad + int(s) + int(n) // 2 for s, n in windows]
            keys = self.tokenize([seq[m:m + self.KEY] for m in mids]) if mids else []
            self._starts = {k.tobytes(): int(s) for k, (s, _) in zip(keys, windows)}

    def predict_tokens(self, tokens: np.ndarray):
        B, L = tokens.shape
        s, e = self.output_span(L)
        if self.pattern == "track":
            mid = L // 2
            starts = [self._starts[tokens[r, mid:mid + self.KEY].tobytes()] for r in range(B)]
            rows = [self._track[a + self._pad + s:a + self._pad + e] for a in starts]
            return _Deferred(lambda: np.stack(rows).astype(np.float32) / np.float32(255))
        out = self._outputs.get((B, L))
        if out is None:
            F = len(self.features)
            if self.pattern == "noise":
                a = np.random.default_rng(L).random((B, e - s, F), dtype=np.float32)
            else:
                a = np.broadcast_to(np.linspace(0.05, 0.95, F, dtype=np.float32), (B, e - s, F)).copy()
            out = self._outputs[(B, L)] = jax.device_put(a)
        return out


class _Deferred:
    """A result computed when it is read (``np.asarray``), like a device array."""

    def __init__(self, fn):
        self._fn = fn

    def block_until_ready(self):
        return self

    def __array__(self, dtype=None, copy=None):
        a = self._fn()
        return a if dtype is None else a.astype(dtype)
