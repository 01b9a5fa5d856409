"""The model object behind ``genoseg.models.load_model``.

A :class:`SegmentationModel` holds parameters on the device and one jitted forward
function; jit caches one executable per input shape, so a genome run that keeps its
window length and batch size fixed compiles once. Backbone modules subclass it and
supply tokenisation, validation and the output span.
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def resolve_dtype(name: str):
    try:
        return COMPUTE_DTYPES[str(name)]
    except KeyError:
        raise ValueError(
            f"compute_dtype must be one of {', '.join(COMPUTE_DTYPES)}, got {name!r}"
        ) from None


def as_batch(seqs: str | Sequence[str]) -> list[str]:
    """Normalise ``predict``'s input to a non-empty list of equal-length strings."""
    if isinstance(seqs, str):
        seqs = [seqs]
    seqs = list(seqs)
    if not seqs:
        raise ValueError("no sequences given: pass one string or a list of strings")
    for i, s in enumerate(seqs):
        if not isinstance(s, str):
            raise ValueError(f"sequence {i} is a {type(s).__name__}, expected str")
        if not s:
            raise ValueError(f"sequence {i} is empty")
    lengths = {len(s) for s in seqs}
    if len(lengths) > 1:
        raise ValueError(
            f"sequences in one batch must have one length, got lengths {sorted(lengths)}"
        )
    return seqs


def encode_bases(seqs: list[str], allowed: str, what: str) -> np.ndarray:
    """Map sequences to ``uint8`` codes ``0..len(allowed)-1`` (case-insensitive).

    Raises ``ValueError`` naming the sequence, 0-based position and character of the
    first base not in ``allowed``.
    """
    table = np.full(256, 255, dtype=np.uint8)
    for code, base in enumerate(allowed):
        table[ord(base)] = code
        table[ord(base.lower())] = code
    try:
        raw = np.frombuffer("".join(seqs).encode("ascii"), dtype=np.uint8)
    except UnicodeEncodeError:
        raw = None
    if raw is None:
        for i, s in enumerate(seqs):
            for pos, ch in enumerate(s):
                if ord(ch) > 127:
                    raise ValueError(
                        f"sequence {i}, position {pos}: {ch!r} is not a base; {what}"
                    )
    codes = table[raw].reshape(len(seqs), -1)
    bad = np.flatnonzero(codes.ravel() == 255)
    if bad.size:
        i, pos = divmod(int(bad[0]), codes.shape[1])
        ch = seqs[i][pos]
        kind = "an ambiguous IUPAC base" if re.fullmatch(r"[NRYKMSWBDHVnrykmswbdhv]", ch) else "not a base"
        raise ValueError(f"sequence {i}, position {pos}: {ch!r} is {kind}; {what}")
    return codes


class SegmentationModel:
    """A loaded segmentation model (see ``DESIGN.md``: stable Python API).

    Attributes:
        backbone: one of ``segment_nt``, ``segment_nt_multi_species``,
            ``segment_enformer``, ``segment_borzoi``.
        features: output feature names, in the order of ``predict``'s last axis.
        window_length: default input length in bases for genome runs.
        compute_dtype: ``"float32"`` or ``"bfloat16"``.
    """

    backbone: str
    features: list[str]
    window_length: int

    def __init__(self, *, backbone: str, features: Sequence[str], window_length: int,
                 forward: Callable, params, state, compute_dtype: str):
        self.backbone = backbone
        self.features = list(features)
        self.window_length = int(window_length)
        self.compute_dtype = compute_dtype
        self._params = jax.device_put(params)
        self._state = jax.device_put(state)

        def logits_fn(params, state, tokens):
            return forward(params, state, tokens).astype(jnp.float32)

        def probs_fn(params, state, tokens):
            return jax.nn.softmax(logits_fn(params, state, tokens), axis=-1)[..., -1]

        self._logits = jax.jit(logits_fn)
        self._probs = jax.jit(probs_fn)

    # -- backbone hooks -------------------------------------------------------
    def tokenize(self, seqs: str | Sequence[str]) -> np.ndarray:
        """Token ids ``[B, T]`` (int32), identical to the authors' tokenizer."""
        raise NotImplementedError

    def check_length(self, length: int) -> None:
        """Raise ``ValueError`` when the trunk cannot take ``length`` bases."""
        raise NotImplementedError

    def output_span(self, length: int) -> tuple[int, int]:
        """``(start, end)``: input positions (0-based, half-open) that ``predict``'s
        output covers for an input of ``length`` bases."""
        raise NotImplementedError

    # -- inference --------------------------------------------------------------
    def _tokens(self, seqs) -> np.ndarray:
        seqs = as_batch(seqs)
        self.check_length(len(seqs[0]))
        return self.tokenize(seqs)

    def predict_async(self, seqs: str | Sequence[str]) -> jax.Array:
        """Like :meth:`predict` but returns the device array without waiting for it,
        so the caller can prepare the next batch while this one runs."""
        return self.predict_tokens(self._tokens(seqs))

    def predict_tokens(self, tokens: np.ndarray) -> jax.Array:
        """Probabilities for already tokenised input, as an unfinished device array."""
        return self._probs(self._params, self._state, jnp.asarray(tokens, dtype=jnp.int32))

    def predict(self, seqs: str | Sequence[str]) -> np.ndarray:
        """Per-base probabilities ``[B, P, F]`` (float32) that each feature is present.

        ``P`` is ``end - start`` of :meth:`output_span`. Raises ``ValueError`` for
        empty input, unequal lengths, lengths the model cannot take, and characters the
        backbone does not accept (the message names the sequence and position).
        """
        return np.asarray(self.predict_async(seqs))

    def logits(self, seqs: str | Sequence[str]) -> np.ndarray:
        """Raw logits ``[B, P, F, 2]`` (float32); ``predict`` is their softmax[..., 1]."""
        return np.asarray(self._logits(self._params, self._state, jnp.asarray(self._tokens(seqs))))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(backbone={self.backbone!r}, features={len(self.features)}, "
                f"window_length={self.window_length}, compute_dtype={self.compute_dtype!r})")
