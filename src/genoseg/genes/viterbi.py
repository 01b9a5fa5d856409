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


_F = sm.FLAG
_DON, _ACC, _ATG, _STOP = _F["DON"], _F["ACC"], _F["ATG"], _F["STOP"]
_PREV_T, _PREV_NOT_T, _TA, _TG, _OTHER2 = _F["PREV_T"], _F["PREV_NOT_T"], _F["PREV2_TA"], _F["PREV2_TG"], _F["PREV2_OTHER"]
_PA, _PG, _NOT_AG = _F["PREV_A"], _F["PREV_G"], _F["PREV_NOT_AG"]
_C1C2, _C1TC2, _NEXT_NOT_AG, _NEXT_NOT_A = _F["C1C2_OK"], _F["C1TC2_OK"], _F["NEXT_NOT_AG"], _F["NEXT_NOT_A"]


def _is_stop(a, b, c):
    return a == T and ((b == A and (c == A or c == G)) or (b == G and c == A))


def _sense_flags(m2, m1, z0, p1, p2):
    """Flags of a junction from the sense bases ``x[j-2], x[j-1], x[j], x[j+1], x[j+2]``."""
    f = 0
    if z0 == G and (p1 == T or p1 == C):
        f |= _DON
    if m2 == A and m1 == G:
        f |= _ACC
    if z0 == A and p1 == T and p2 == G:
        f |= _ATG
    if _is_stop(z0, p1, p2):
        f |= _STOP
    f |= _PREV_T if m1 == T else _PREV_NOT_T
    if m2 == T and m1 == A:
        f |= _TA
    elif m2 == T and m1 == G:
        f |= _TG
    else:
        f |= _OTHER2
    f |= _PA if m1 == A else _PG if m1 == G else _NOT_AG
    if not _is_stop(m2, m1, z0):
        f |= _C1C2  # the codon x[j-2:j+1] is not a stop
    if not _is_stop(T, m1, z0):
        f |= _C1TC2  # T + x[j-1] + x[j] is not a stop
    if z0 != A and z0 != G:
        f |= _NEXT_NOT_AG
    if z0 != A:
        f |= _NEXT_NOT_A
    return f


def _base(x, i, n, comp):
    """Code of ``x[i]`` (complemented if ``comp``); OTHER outside ``x``."""
    if i < 0 or i >= n or x[i] == OTHER:
        return OTHER
    return 3 - x[i] if comp else x[i]


def _flags_py(x, out):  # pragma: no cover - compiled
    """Fill ``out[0, j]`` (plus strand) and ``out[1, j]`` (minus strand) for every genome
    junction ``j``. The minus strand reads the reverse complement ``r``: genome junction
    ``j`` is its junction ``n - j``, and ``r[n - j + k] = comp(x[j - 1 - k])``."""
    n = x.shape[0]
    for j in range(n + 1):
        out[0, j] = _sense_flags(_base(x, j - 2, n, False), _base(x, j - 1, n, False), _base(x, j, n, False),
                                 _base(x, j + 1, n, False), _base(x, j + 2, n, False))
        out[1, j] = _sense_flags(_base(x, j + 1, n, True), _base(x, j, n, True), _base(x, j - 1, n, True),
                                 _base(x, j - 2, n, True), _base(x, j - 3, n, True))


def junction_flags(x: np.ndarray) -> np.ndarray:
    """Predicates of both strands at every genome junction of ``x``: ``uint16 [2, n + 1]``
    (row 0 plus, row 1 minus; bits :data:`statemodel.FLAG`; see
    :mod:`genoseg.genes.statemodel`)."""
    out = np.zeros((2, len(x) + 1), np.uint16)
    _jit("flags")(np.ascontiguousarray(x, np.uint8), out)
    return out


def _window_sum(v: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """``sum(v[j + lo : j + hi])`` for every junction ``j = 0..n`` (0 outside), float32."""
    n = len(v)
    pad = max(-lo, hi, 0)
    vp = np.concatenate([np.zeros(pad, np.float32), v.astype(np.float32, copy=False), np.zeros(pad, np.float32)])
    out = np.zeros(n + 1, np.float32)
    for k in range(lo, hi):
        out += vp[pad + k: pad + k + n + 1]
    return out


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


def splice_prior(x: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """Log-odds (natural log, against uniform bases) of the consensus tables above at
    the junctions of the sense sequence ``x`` where ``flags`` (:func:`junction_flags`)
    allow a donor or an acceptor (0 elsewhere: no edge reads them): ``float32 [2, n + 1]``
    (donor, acceptor). Bases other than A/C/G/T and positions outside ``x`` score 0."""
    n = len(x)
    out = np.zeros((2, n + 1), np.float32)
    pad = 16
    xp = np.concatenate([np.full(pad, OTHER, np.uint8), x, np.full(pad, OTHER, np.uint8)])
    for row, table, flag in ((0, DONOR_CONSENSUS, sm.FLAG["DON"]), (1, ACCEPTOR_CONSENSUS, sm.FLAG["ACC"])):
        idx = np.flatnonzero(flags & flag)
        acc = np.zeros(len(idx), np.float32)
        for off, lo in _log_odds(table):
            acc += lo[xp[pad + off + idx]]
        out[row, idx] = acc
    return out


_LOG_ODDS: dict = {}


def _log_odds(table: dict) -> list:
    """``(offset, float32 [5] log-odds by base code, 0 for other bases)`` of a consensus
    table, computed once (splice_prior runs per region: 10^5 on a fragmented assembly)."""
    key = id(table)
    if key not in _LOG_ODDS:
        _LOG_ODDS[key] = [(off, np.concatenate([np.log(np.asarray(freq) / 0.25), [0.0]]).astype(np.float32))
                          for off, freq in table.items()]
    return _LOG_ODDS[key]


def _emissions_py(codes, columns, W, logit, out):  # pragma: no cover - compiled
    n = codes.shape[0]
    for i in range(n):
        for f in range(columns.shape[0]):
            if columns[f] < 0:
                continue
            lg = logit[codes[i, columns[f]]]
            for c in range(W.shape[0]):
                if W[c, f] != 0:
                    out[i, c] += W[c, f] * lg


def emissions(codes: np.ndarray, columns: list, weights: np.ndarray, logit: np.ndarray) -> np.ndarray:
    """Emission log-scores ``float32 [n, C]`` relative to the intergenic class.

    Each class expects a label per feature (:data:`statemodel.EXPECTED`); treating the
    model's probabilities as independent evidence for those labels, the log-likelihood
    of class ``c`` minus that of intergenic (which expects every label 0) is
    ``sum_f w_f * EXPECTED[c, f] * logit(p_f)``. ``columns[f]`` is the column of feature
    ``f`` in ``codes`` (``uint8`` p*255) or None when the model lacks it.
    """
    W = (sm.EXPECTED * weights[None, :]).astype(np.float32)  # [C, F]
    cols = np.array([-1 if c is None else c for c in columns], np.int64)
    out = np.zeros((codes.shape[0], len(sm.CLASSES)), np.float32)
    _jit("emissions")(codes, cols, W, logit.astype(np.float32), out)
    return out


_JIT: dict = {}


def _jit(name: str):
    """The numba-compiled helper ``name`` (compiled on first use, cached on disk)."""
    if name not in _JIT:
        if not _JIT:  # the helpers the others call, compiled first
            global _is_stop, _sense_flags, _base
            _is_stop, _sense_flags, _base = (_compile(f) for f in (_is_stop, _sense_flags, _base))
        fn = {"flags": _flags_py, "emissions": _emissions_py, "traceback": _traceback_py}[name]
        _JIT[name] = _compile(fn, nogil=True)
    return _JIT[name]


def _compile(fn, **options):
    """``numba.njit`` with the on-disk cache where numba can write one (not, e.g., for a
    user who can write neither the package nor any cache directory: compiled each run)."""
    numba = _numba()
    try:
        return numba.njit(cache=True, **options)(fn)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return numba.njit(**options)(fn)


def _numba():
    import os

    os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(_cache_dir(), "numba"))  # read when numba loads
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a declared dependency
        raise GenosegError("genoseg genes needs numba for its Viterbi decoder: "
                           "pip install -c constraints.txt numba") from None
    return numba


# ------------------------------------------------------------------------------ kernel
def _viterbi_py(emis, cls, flags, jsc, first, src, strand, need, skind, const):  # pragma: no cover - compiled
    """Best state path (``int8 [n]``) and its score, starting and ending in state 0
    (intergenic).

    Edges are grouped by destination (``first[d]:first[d + 1]`` are the edges into state
    ``d``); ``flags``: ``uint16 [2, n + 1]``; ``jsc``: ``float32 [2, 2, n + 1]``. Runs
    compiled by numba; the plain function is the reference for tests.
    """
    n = emis.shape[0]
    S = cls.shape[0]
    neg = -np.inf
    bp = np.zeros((n, S), np.uint8)
    prev = np.full(S, neg)
    cur = np.full(S, neg)
    fl = np.zeros(2, np.int64)
    js = np.zeros((2, 2))
    prev[0] = emis[0, cls[0]]
    for i in range(1, n):
        fl[0] = flags[0, i]
        fl[1] = flags[1, i]
        js[0, 0] = jsc[0, 0, i]
        js[0, 1] = jsc[0, 1, i]
        js[1, 0] = jsc[1, 0, i]
        js[1, 1] = jsc[1, 1, i]
        for d in range(S):
            best = neg
            arg = 0
            for e in range(first[d], first[d + 1]):
                if (fl[strand[e]] & need[e]) != need[e]:
                    continue
                v = prev[src[e]] + const[e]
                if skind[e] >= 0:
                    v += js[strand[e], skind[e]]
                if v > best:
                    best = v
                    arg = src[e]
            cur[d] = best + emis[i, cls[d]]
            bp[i, d] = arg
        prev, cur = cur, prev
    return _traceback_py(bp), prev[0]


def kernel_source(edge_arrays, cls) -> str:
    """Python source of the compiled kernel for one edge set: the generic kernel above
    unrolled over the edges, every state's score a local variable and every edge's
    source, required flags and score kind a constant (about 6x faster than looping over
    edge arrays). Edge constants stay an argument (``const``), so one compiled kernel
    serves every :class:`~genoseg.genes.decoder.DecoderParams`."""
    src, dst, strand, need, skind, _ = edge_arrays
    S = len(cls)
    body = ["def viterbi(emis, flags, jsc, const, bp):",
            '    """Generated by genoseg.genes.viterbi.kernel_source; returns the final IG score."""',
            "    n = emis.shape[0]",
            "    neg = -np.inf"]
    body += [f"    v{s} = neg" for s in range(1, S)]
    body.append(f"    v0 = np.float64(emis[0, {cls[0]}])")
    body += ["    for i in range(1, n):", "        f0 = flags[0, i]", "        f1 = flags[1, i]"]
    body += [f"        j{a}{k} = np.float64(jsc[{a}, {k}, i])" for a in range(2) for k in range(2)]
    body += [f"        e{c} = np.float64(emis[i, {c}])" for c in sorted(set(cls.tolist()))]
    for d in range(S):
        body += ["        b = neg", "        a = 0"]
        for e in np.flatnonzero(dst == d).tolist():
            pad = "        "
            if need[e]:
                body.append(f"{pad}if (f{strand[e]} & {int(need[e])}) == {int(need[e])}:")
                pad += "    "
            score = f" + j{strand[e]}{skind[e]}" if skind[e] >= 0 else ""
            body += [f"{pad}t = v{src[e]} + const[{e}]{score}", f"{pad}if t > b:", f"{pad}    b = t",
                     f"{pad}    a = {src[e]}"]
        body += [f"        w{d} = b + e{cls[d]}", f"        bp[i, {d}] = a"]
    body.append("        " + ", ".join(f"v{s}" for s in range(S)) + " = " + ", ".join(f"w{s}" for s in range(S)))
    body.append("    return v0")
    return "import numpy as np\n\n\n" + "\n".join(body) + "\n"


def _traceback_py(bp):  # pragma: no cover - compiled
    """The path ending in state 0 from back-pointers ``bp [n, S]``."""
    n = bp.shape[0]
    path = np.zeros(n, np.int8)
    s = 0
    for i in range(n - 1, 0, -1):
        path[i] = s
        s = bp[i, s]
    path[0] = s
    return path


def _cache_dir() -> str:
    """Where the generated kernel source lives, so that numba can cache its machine
    code across runs: ``$GENOSEG_CACHE_DIR``, else ``$XDG_CACHE_HOME/genoseg`` or
    ``~/.cache/genoseg``; a temporary directory when none is writable."""
    import os
    import tempfile

    home = os.path.expanduser("~")
    xdg = os.environ.get("XDG_CACHE_HOME") or (os.path.join(home, ".cache") if os.path.isabs(home) else None)
    base = os.environ.get("GENOSEG_CACHE_DIR") or (os.path.join(xdg, "genoseg") if xdg else None)
    candidates = ([os.path.join(base, "kernels")] if base else []) + [
        os.path.join(tempfile.gettempdir(), f"genoseg-kernels-{os.getuid()}")]
    for d in candidates:
        try:
            os.makedirs(d, exist_ok=True)
            if os.access(d, os.W_OK):
                return d
        except OSError:
            continue
    return tempfile.mkdtemp(prefix="genoseg-kernels-")


_KERNELS: dict = {}


def kernel(edge_arrays=None, cls=None):
    """Compiled kernels ``(viterbi, traceback)`` for an edge set (numba, ``nogil``, so
    regions decode in parallel threads). Without arguments: numba's presence is checked
    (a clear error when it is missing)."""
    _numba()
    if edge_arrays is None:
        return None
    import hashlib
    import importlib.util
    import os
    import sys

    # Regions share one edge set: look it up by its arrays before generating the source
    # (generating it costs ~0.7 ms, paid per region on 10^5 scaffolds otherwise).
    structure = hashlib.sha256()
    for a in (*edge_arrays[:5], cls):
        a = np.ascontiguousarray(a)
        structure.update(f"{a.dtype}{a.shape}".encode() + a.tobytes())
    hit = _KERNELS.get("edges:" + structure.hexdigest())
    if hit is not None:
        return hit
    source = kernel_source(edge_arrays, cls)
    key = hashlib.sha256(source.encode()).hexdigest()[:16]
    if key not in _KERNELS:
        path = os.path.join(_cache_dir(), f"viterbi_{key}.py")
        if not os.path.exists(path):
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "w") as fh:
                fh.write(source)
            os.replace(tmp, path)
        name = f"genoseg_viterbi_{key}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # numba's cache re-imports the module by name
        spec.loader.exec_module(module)
        _KERNELS[key] = (_compile(module.viterbi, nogil=True), _jit("traceback"))
    _KERNELS["edges:" + structure.hexdigest()] = _KERNELS[key]
    return _KERNELS[key]


def decode(emis: np.ndarray, flags: np.ndarray, jsc: np.ndarray, edge_arrays, cls: np.ndarray,
           compiled: bool = True) -> tuple[np.ndarray, float]:
    """Run the kernel; returns ``(path int8 [n], score)``. ``compiled=False`` runs the
    generic kernel in plain Python (slow; the reference for tests)."""
    src, dst, strand, need, skind, const = edge_arrays
    if not compiled:
        first = np.searchsorted(dst, np.arange(len(cls) + 1)).astype(np.int64)  # edges sorted by dst
        return _viterbi_py(emis, cls, flags, jsc, first, src, strand, need, skind, const)
    run, traceback = kernel(edge_arrays, cls)
    bp = np.zeros((emis.shape[0], len(cls)), np.uint8)
    score = run(emis, flags, jsc, np.asarray(const, np.float64), bp)
    return traceback(bp), float(score)
