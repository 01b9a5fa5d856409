"""Exact Viterbi decoding of one region with the two-strand gene state model.

Inputs per region of ``n`` bases (0-based, contiguous, every base predicted):

- ``seq``: ``uint8 [n]`` base codes 0-3 = A, C, G, T (either case in the FASTA), 4 =
  anything else (N, IUPAC: matches no motif);
- ``emis``: ``float32 [n, C]`` emission log-scores per class (:func:`emissions`);
- per strand: junction flags ``uint16 [n + 1]`` (:func:`junction_flags`) and splice
  scores ``float32 [2, n + 1]`` (:func:`junction_scores`). Junction ``j`` lies between
  bases ``j - 1`` and ``j``.

The dynamic programme runs over positions (one pass, ``O(n * edges)`` time, ``n * 43``
bytes of back-pointers) in a compiled numba kernel: a Python loop over bases would be
~100x slower. Every path starts and ends in the intergenic state (regions carry
intergenic margins), so a gene model never runs past a region.
"""

from __future__ import annotations

import numpy as np

from ..errors import GenosegError
from . import statemodel as sm

A, C, G, T, OTHER = 0, 1, 2, 3, 4
_CODE = np.full(256, OTHER, np.uint8)
for _i, _b in enumerate(b"ACGT"):
    _CODE[_b] = _CODE[_b + 32] = _i
_COMP = np.array([T, G, C, A, OTHER], np.uint8)


def encode(seq_bytes: np.ndarray) -> np.ndarray:
    """ASCII bases (``uint8``) -> codes 0-3 (A, C, G, T; either case), 4 otherwise."""
    return _CODE[np.asarray(seq_bytes, np.uint8)]


def revcomp(codes: np.ndarray) -> np.ndarray:
    return _COMP[codes[::-1]]


def junction_flags(x: np.ndarray) -> np.ndarray:
    """Sense-strand predicates at every junction ``j`` of ``x`` (``uint16 [n + 1]``,
    bits :data:`statemodel.FLAG`), see :mod:`genoseg.genes.statemodel`."""
    n = len(x)
    xp = np.concatenate([np.full(3, OTHER, np.uint8), x, np.full(3, OTHER, np.uint8)])

    def at(k):  # x[j + k] for every junction j = 0..n
        return xp[3 + k: 3 + k + n + 1]

    prev2, prev, nxt, nxt1, nxt2 = at(-2), at(-1), at(0), at(1), at(2)
    stop_at = (nxt == T) & (((nxt1 == A) & ((nxt2 == A) | (nxt2 == G))) | ((nxt1 == G) & (nxt2 == A)))
    stop_before2 = np.concatenate([np.zeros(2, bool), stop_at[:-2]])  # codon x[j-2:j+1] is a stop
    prev_t = prev == T
    ta, tg = (prev2 == T) & (prev == A), (prev2 == T) & (prev == G)
    pa, pg = prev == A, prev == G
    split_stop = (pa & ((nxt == A) | (nxt == G))) | (pg & (nxt == A))  # T + x[j-1] + x[j]
    bits = {
        "DON": (nxt == G) & ((nxt1 == T) | (nxt1 == C)),
        "ACC": (prev2 == A) & (prev == G),
        "ATG": (nxt == A) & (nxt1 == T) & (nxt2 == G),
        "STOP": stop_at,
        "PREV_T": prev_t, "PREV_NOT_T": ~prev_t,
        "PREV2_TA": ta, "PREV2_TG": tg, "PREV2_OTHER": ~(ta | tg),
        "PREV_A": pa, "PREV_G": pg, "PREV_NOT_AG": ~(pa | pg),
        "C1C2_OK": ~stop_before2, "C1TC2_OK": ~split_stop,
        "NEXT_NOT_AG": ~((nxt == A) | (nxt == G)), "NEXT_NOT_A": nxt != A,
    }
    out = np.zeros(n + 1, np.uint16)
    for name, mask in bits.items():
        out |= mask.astype(np.uint16) * np.uint16(sm.FLAG[name])
    return out


def _window_sum(v: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """``sum(v[j + lo : j + hi])`` for every junction ``j = 0..n`` (0 outside)."""
    n = len(v)
    c = np.concatenate([[0.0], np.cumsum(v, dtype=np.float64)])
    j = np.arange(n + 1)
    return (c[np.clip(j + hi, 0, n)] - c[np.clip(j + lo, 0, n)]).astype(np.float32)


def _tolerant(v: np.ndarray, d: int) -> np.ndarray:
    """``max(v[j - d : j + d + 1])`` for every ``j`` (edges: the values inside)."""
    out = v.copy()
    for k in range(1, d + 1):
        np.maximum(out[:-k], v[k:], out=out[:-k])
        np.maximum(out[k:], v[:-k], out=out[k:])
    return out


def junction_scores(donor_q, acceptor_q, logit: np.ndarray, weight: float, window: int,
                    tolerance: int = 0) -> np.ndarray:
    """Splice-site evidence at every junction of the sense strand.

    A donor at junction ``j`` (intron starting at base ``j``) labels the intron's first
    ``window`` bases ``[j, j + window)`` as ``splice_donor``, an acceptor at ``j``
    (intron ending at base ``j - 1``) its last ``window`` bases; the log-likelihood of
    those labels against none is the sum of ``logit(p)`` over the window (the models'
    splice-site features are 8 bp wide on the demo genomes). ``donor_q``/``acceptor_q``:
    ``uint8`` codes of the sense strand, or None (score 0). Returns
    ``float32 [2, n + 1]`` (row 0 donor, row 1 acceptor) times ``weight``.
    """
    n = len(donor_q) if donor_q is not None else len(acceptor_q) if acceptor_q is not None else 0
    out = np.zeros((2, n + 1), np.float32)
    if donor_q is not None:
        out[0] = weight * _tolerant(_window_sum(logit[donor_q], 0, window), tolerance)
    if acceptor_q is not None:
        out[1] = weight * _tolerant(_window_sum(logit[acceptor_q], -window, 0), tolerance)
    return out


#: Splice-site consensus (approximate base frequencies of vertebrate splice sites, A C G T
#: per position; the GT/AG dinucleotides themselves are hard constraints). Offsets are
#: relative to the junction: the donor's exon ends at -1 and its intron starts at 0; the
#: acceptor's intron ends at -1 and its exon starts at 0.
DONOR_CONSENSUS = {
    -3: (0.35, 0.35, 0.18, 0.12), -2: (0.60, 0.13, 0.14, 0.13), -1: (0.09, 0.04, 0.80, 0.07),
    2: (0.60, 0.03, 0.34, 0.03), 3: (0.70, 0.08, 0.12, 0.10), 4: (0.07, 0.06, 0.80, 0.07),
    5: (0.16, 0.16, 0.19, 0.49),
}
_PYRIMIDINE = (0.12, 0.38, 0.12, 0.38)
ACCEPTOR_CONSENSUS = {**{k: _PYRIMIDINE for k in range(-15, -4)}, -3: (0.07, 0.74, 0.01, 0.18),
                      0: (0.25, 0.14, 0.50, 0.11)}


def splice_prior(x: np.ndarray) -> np.ndarray:
    """Log-odds (natural log, against uniform bases) of the consensus tables above at
    every junction of the sense sequence ``x``: ``float32 [2, n + 1]`` (donor, acceptor).
    Bases other than A/C/G/T and positions outside ``x`` score 0."""
    n = len(x)
    out = np.zeros((2, n + 1), np.float32)
    pad = 16
    xp = np.concatenate([np.full(pad, OTHER, np.uint8), x, np.full(pad, OTHER, np.uint8)])
    for row, table in ((0, DONOR_CONSENSUS), (1, ACCEPTOR_CONSENSUS)):
        for off, freq in table.items():
            lo = np.concatenate([np.log(np.asarray(freq) / 0.25), [0.0]]).astype(np.float32)
            out[row] += lo[xp[pad + off: pad + off + n + 1]]
    return out


def emissions(codes: np.ndarray, columns: list, weights: np.ndarray, logit: np.ndarray) -> np.ndarray:
    """Emission log-scores ``float32 [n, C]`` relative to the intergenic class.

    Each class expects a label per feature (:data:`statemodel.EXPECTED`); treating the
    model's probabilities as independent evidence for those labels, the log-likelihood
    of class ``c`` minus that of intergenic (which expects every label 0) is
    ``sum_f w_f * EXPECTED[c, f] * logit(p_f)``. ``columns[f]`` is the column of feature
    ``f`` in ``codes`` (``uint8`` p*255) or None when the model lacks it.
    """
    n = codes.shape[0]
    W = sm.EXPECTED * weights[None, :]  # [C, F]
    out = np.zeros((n, len(sm.CLASSES)), np.float32)
    for f, col in enumerate(columns):
        if col is None or not W[:, f].any():
            continue
        lg = logit[codes[:, col]]  # [n]
        for c in np.flatnonzero(W[:, f]):
            out[:, c] += W[c, f] * lg
    return out


# ------------------------------------------------------------------------------ kernel
def _viterbi_py(emis, cls, flags, jsc, src, dst, strand, need, skind, const):  # pragma: no cover - compiled
    """Best state path (``int8 [n]``), starting and ending in state 0 (intergenic).

    ``flags``: ``uint16 [2, n + 1]``; ``jsc``: ``float32 [2, 2, n + 1]``; edges sorted by
    ``dst``. Runs compiled by numba; the plain function is the reference for tests.
    """
    n = emis.shape[0]
    S = cls.shape[0]
    E = src.shape[0]
    neg = -np.inf
    bp = np.zeros((n, S), np.uint8)
    prev = np.full(S, neg)
    cur = np.full(S, neg)
    prev[0] = emis[0, cls[0]]
    for i in range(1, n):
        f0 = flags[0, i]
        f1 = flags[1, i]
        for s in range(S):
            cur[s] = neg
        for e in range(E):
            fl = f0 if strand[e] == 0 else f1
            if (fl & need[e]) != need[e]:
                continue
            v = prev[src[e]] + const[e]
            k = skind[e]
            if k >= 0:
                v += jsc[strand[e], k, i]
            d = dst[e]
            if v > cur[d]:
                cur[d] = v
                bp[i, d] = src[e]
        for s in range(S):
            cur[s] += emis[i, cls[s]]
        prev, cur = cur, prev
    path = np.zeros(n, np.int8)
    s = 0
    for i in range(n - 1, 0, -1):
        path[i] = s
        s = bp[i, s]
    path[0] = s
    return path, prev[0]


_KERNEL = None


def kernel():
    """The compiled kernel (numba, ``nogil`` so regions decode in parallel threads)."""
    global _KERNEL
    if _KERNEL is None:
        try:
            import numba
        except ImportError:  # pragma: no cover - numba is a declared dependency
            raise GenosegError("genoseg genes needs numba for its Viterbi decoder: "
                               "pip install -c constraints.txt numba") from None
        _KERNEL = numba.njit(nogil=True, cache=True)(_viterbi_py)
    return _KERNEL


def decode(seq: np.ndarray, emis: np.ndarray, flags: np.ndarray, jsc: np.ndarray, edge_arrays,
           cls: np.ndarray, compiled: bool = True) -> tuple[np.ndarray, float]:
    """Run the kernel; returns ``(path int8 [n], score)``. ``compiled=False`` runs the
    same code in plain Python (slow; for tests on short sequences)."""
    fn = kernel() if compiled else _viterbi_py
    src, dst, strand, need, skind, const = edge_arrays
    return fn(emis, cls, flags, jsc, src, dst, strand, need, skind, const)
