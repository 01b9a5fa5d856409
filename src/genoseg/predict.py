"""Chunk inference and overlap merging (``genoseg predict``).

A chunk (see :mod:`genoseg.windows`) lists, per contig, the bases it owns ``[a, b)``
(0-based, half-open) and every window whose output span meets them. Windows are run
through the model in batches of a fixed size (the last batch is padded with copies of
its last window, so each window length compiles once); batches are made of consecutive
windows of one length, in start order.

Merge: the prediction of a base is the weighted mean over the windows whose output span
covers it, with the triangular taper ``w(j) = min(j + 1, P - j) / ceil(P / 2)`` over the
``P`` output positions of a window (highest in the middle, falling towards the edges,
never 0, so a base covered by one window only — contig and run ends — keeps that
window's value). Sums are taken in float64 in window start order; since every chunk
computes exactly the windows covering its owned bases, in the same order, the result
does not depend on the chunking (bit for bit, given that the model's output for a
window does not depend on its batch-mates, which holds for XLA on CPU and GPU for a
fixed batch shape).

Reverse complement (``reverse_complement=True``): each window is also predicted on its
reverse complement, flipped back to forward coordinates, and averaged
``(p_fwd + p_rc) / 2`` before merging. Features are kept as they are, not swapped:
the published models were trained on annotations of both strands (a splice donor on
the minus strand is labelled ``splice_donor`` too), so the RC prediction of a feature at
a base is the same feature's prediction.

Overlap of host and device work: while the device runs batch ``k``
(``model.predict_tokens`` returns an unfinished JAX array) the host reads and tokenises
batch ``k + 1``; results are merged and written as they arrive (one-batch lookahead).
Memory: the merge buffer covers at most the windows in flight, and rows are streamed to
Parquet row groups, so memory does not grow with contig or chunk length.
"""

from __future__ import annotations

import collections
import logging
import math
import time
from typing import Iterator, Optional

import numpy as np

from . import signals
from .errors import GenosegError
from .store import PredictionWriter, base_metadata, quantize
from .windows import CHUNK_FORMAT, Geometry

log = logging.getLogger(__name__)

_COMPLEMENT = np.arange(256, dtype=np.uint8)
for _a, _b in zip("ACGTNacgtn", "TGCANtgcan"):
    _COMPLEMENT[ord(_a)] = ord(_b)
_TO_N = np.full(256, ord("N"), dtype=np.uint8)
for _a in "ACGTacgt":
    _TO_N[ord(_a)] = ord(_a)

_TAPERS: dict[int, np.ndarray] = {}


def taper(P: int) -> np.ndarray:
    """Merge weights over ``P`` output positions (float64, > 0, symmetric)."""
    w = _TAPERS.get(P)
    if w is None:
        j = np.arange(P, dtype=np.float64)
        w = np.minimum(j + 1, P - j) / math.ceil(P / 2)
        _TAPERS[P] = w
    return w


class _Accumulator:
    """Weighted sums for the owned bases ``[a, b)`` of one contig, flushed in order."""

    def __init__(self, contig: str, a: int, b: int, n_features: int, writer: PredictionWriter):
        self.contig, self.a, self.b = contig, a, b
        self.writer = writer
        self.lo = a  # first base not yet flushed
        self.num = np.zeros((0, n_features), np.float64)
        self.den = np.zeros(0, np.float64)
        self.rows = 0

    def add(self, ostart: int, probs: np.ndarray) -> None:
        """Add one window's output ``probs [P, F]`` covering ``[ostart, ostart + P)``."""
        P = probs.shape[0]
        self.flush(max(ostart, self.a))  # later windows start at or after ostart
        lo, hi = max(ostart, self.lo), min(ostart + P, self.b)
        if hi <= lo:
            return
        need = hi - self.lo
        if need > self.den.size:
            grow = need - self.den.size
            self.num = np.concatenate([self.num, np.zeros((grow, self.num.shape[1]), np.float64)])
            self.den = np.concatenate([self.den, np.zeros(grow, np.float64)])
        w = taper(P)[lo - ostart:hi - ostart]
        self.num[lo - self.lo:hi - self.lo] += w[:, None] * probs[lo - ostart:hi - ostart]
        self.den[lo - self.lo:hi - self.lo] += w

    def flush(self, upto: Optional[int] = None) -> None:
        """Write the buffered bases before ``upto`` (all when ``None``) and move the
        buffer start to ``upto`` (bases before it can receive no more windows)."""
        end = self.lo + self.den.size
        target = end if upto is None else max(int(upto), self.lo)
        n = min(target, end) - self.lo
        if n > 0:
            den, num = self.den[:n], self.num[:n]
            keep = np.flatnonzero(den > 0)
            if keep.size:
                p = (num[keep] / den[keep, None]).astype(np.float32)
                self.writer.write(keep.astype(np.int64) + self.lo, quantize(p), chrom=self.contig)
                self.rows += keep.size
            self.num, self.den = self.num[n:], self.den[n:]
        self.lo = target if target >= end else self.lo + n


def check_model(model, g: Geometry) -> None:
    """The loaded model must match the plan's backbone and output spans."""
    if model.backbone != g.backbone and not (
            {model.backbone, g.backbone} <= {"segment_nt", "segment_nt_multi_species"}):
        raise GenosegError(f"the plan was made for {g.backbone}, the model is {model.backbone}")
    for n in g.window_lengths:
        model.check_length(n)
        if tuple(model.output_span(n)) != g.span(n):
            raise GenosegError(f"model output span {tuple(model.output_span(n))} for {n}-bp windows differs "
                               f"from the plan's {g.span(n)}; re-run plan with this model (--model)")


def read_chunk(path: str) -> dict:
    from .windows import read_json

    return read_json(path, "chunk file", CHUNK_FORMAT)


def predict_chunk(model, fasta, chunk: dict, out_path: str, batch_size: int = 8,
                  reverse_complement: bool = False, overwrite: bool = False,
                  progress_every: float = 30.0) -> dict:
    """Predict one chunk and write its owned bases to ``out_path`` (Parquet, atomic).

    ``fasta`` is a :class:`genoseg.fasta.Fasta`. Returns statistics: windows, owned
    bases, rows and seconds spent in host preparation, device wait and merging.
    """
    from .outputs import atomic_path

    if batch_size < 1:
        raise GenosegError("--batch-size must be at least 1")
    g = Geometry.from_json(chunk["geometry"])
    check_model(model, g)
    for part in chunk["parts"]:
        try:
            n = fasta.length(part["contig"])
        except KeyError:
            raise GenosegError(f"{fasta.path}: contig {part['contig']!r} of the plan is not in this FASTA") from None
        if n != part["contig_length"]:
            raise GenosegError(f"{fasta.path}: contig {part['contig']!r} is {n} bp, the plan says "
                               f"{part['contig_length']}: not the FASTA the plan was made from")
    features = list(model.features)
    meta = {**base_metadata(features, g.backbone), "kind": "chunk", "plan_id": chunk["plan_id"],
            "chunk": chunk["chunk"], "reverse_complement": bool(reverse_complement),
            "compute_dtype": getattr(model, "compute_dtype", None),
            "device": getattr(model, "device", None)}
    jobs = [(pi, int(s), int(n)) for pi, part in enumerate(chunk["parts"]) for s, n in part["compute"]]
    stats = collections.Counter()
    t_start = time.perf_counter()
    with atomic_path(out_path, overwrite=overwrite) as tmp:
        writer = PredictionWriter(tmp, features, meta, with_chrom=True)
        try:
            accs = [_Accumulator(p["contig"], p["owned"][0], p["owned"][1], len(features), writer)
                    for p in chunk["parts"]]
            current = 0
            last_log = time.perf_counter()
            done = 0
            for batch_jobs, probs in _run_batches(model, fasta, chunk, jobs, batch_size, g,
                                                  reverse_complement, stats):
                signals.check()  # a SIGTERM/SIGINT stops here, between batches (genoseg.signals)
                t0 = time.perf_counter()
                for (pi, start, n), p in zip(batch_jobs, probs):
                    while current < pi:
                        accs[current].flush()
                        current += 1
                    s, _ = g.span(n)
                    accs[pi].add(start + s, p)
                stats["merge_s"] += time.perf_counter() - t0
                done += len(batch_jobs)
                if time.perf_counter() - last_log > progress_every:
                    last_log = time.perf_counter()
                    log.info("chunk %d: %d/%d windows (%.0f%%)", chunk["chunk"], done, len(jobs),
                             100.0 * done / max(1, len(jobs)))
            t0 = time.perf_counter()
            for acc in accs[current:]:
                acc.flush()
            stats["merge_s"] += time.perf_counter() - t0
        finally:
            writer.close()
    owned = sum(p["owned"][1] - p["owned"][0] for p in chunk["parts"])
    out = {"chunk": chunk["chunk"], "windows": len(jobs), "owned_bases": owned,
           "rows": sum(a.rows for a in accs), "seconds": time.perf_counter() - t_start, **stats}
    log.info("chunk %d: %d windows, %d rows in %.1f s -> %s", chunk["chunk"], len(jobs), out["rows"],
             out["seconds"], out_path)
    return out


def _run_batches(model, fasta, chunk, jobs, batch_size, g: Geometry, rc: bool, stats
                 ) -> Iterator[tuple[list, np.ndarray]]:
    """Yield ``(jobs, probs [n, P, F] float32)`` per batch, in job order, keeping one
    batch in flight on the device while the next is prepared."""
    parts = chunk["parts"]
    in_flight: collections.deque = collections.deque()

    def batches():
        i = 0
        while i < len(jobs):
            n = jobs[i][2]
            j = i + 1
            while j < len(jobs) and j - i < batch_size and jobs[j][2] == n:
                j += 1
            yield jobs[i:j]
            i = j

    def finish(item):
        bj, arr = item
        t0 = time.perf_counter()
        a = np.asarray(arr)
        stats["device_wait_s"] += time.perf_counter() - t0
        k = len(bj)
        if rc:
            fwd, rev = a[:batch_size][:k], a[batch_size:][:k]
            a = (fwd + rev[:, ::-1]) * np.float32(0.5)
        else:
            a = a[:k]
        return bj, a

    for bj in batches():
        t0 = time.perf_counter()
        n = bj[0][2]
        seqs = np.empty((batch_size, n), np.uint8)
        for r, (pi, start, _) in enumerate(bj):
            seqs[r] = fasta.fetch_bytes(parts[pi]["contig"], start, start + n)
        seqs[len(bj):] = seqs[len(bj) - 1]  # pad the last batch with copies
        if g.allows_n:
            seqs = _TO_N[seqs]  # other IUPAC codes are read as N
        if rc:
            s, e = g.span(n)
            if (s, e) != (n - e, n - s):
                raise GenosegError("reverse complement needs an output span centred in the window")
            seqs = np.concatenate([seqs, _COMPLEMENT[seqs][:, ::-1]])
        tokens = model.tokenize([row.tobytes().decode("ascii") for row in seqs])
        stats["host_s"] += time.perf_counter() - t0
        in_flight.append((bj, model.predict_tokens(tokens)))
        stats["batches"] += 1
        if len(in_flight) > 1:
            yield finish(in_flight.popleft())
    while in_flight:
        yield finish(in_flight.popleft())
