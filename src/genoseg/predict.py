"""Chunk inference and overlap merging (``genoseg predict``).

A chunk (see :mod:`genoseg.windows`) lists, per contig ("part"), the bases it owns
``[a, b)`` (0-based, half-open) and every window whose output span meets them ("jobs",
in part order, then start order).

Merge: the prediction of a base is the weighted mean over the windows whose output span
covers it, with the triangular taper ``w(j) = min(j + 1, P - j) / ceil(P / 2)`` over the
``P`` output positions of a window (highest in the middle, falling towards the edges,
never 0, so a base covered by one window only — contig and run ends — keeps that
window's value). Sums are taken in float64 in window start order.

Batching (no padded copies in the steady state). Every device call has the shape
``[batch_size, n]`` for a window length ``n`` (one compile per length). Windows of one
length are pooled across the chunk's contigs: a batch is emitted as soon as
``batch_size`` windows of its length have been seen (:func:`schedule`), so the windows
of a long run, of consecutive runs and of many small scaffolds all fill whole batches.
A partial batch, padded with copies of its last window, is sent only at the end of the
chunk (at most one per window length, i.e. at most five for SegmentNT, one for
Enformer/Borzoi) or when its oldest window falls more than ``horizon`` bases behind the
scan (rare: short runs of one length far apart), which bounds the merge memory.

Why results stay bit-for-bit identical whatever the chunking and across runs:

1. XLA may pick different kernels (and so different float rounding) for different
   input shapes, but for one shape the program is fixed, and a row's output depends
   only on that row's input (no op mixes batch rows; tested for the real SegmentNT by
   computing one window in different batch rows and with different batch-mates, and
   by the chunking-invariance tests). Every window is computed in a batch of exactly
   ``[batch_size, n]``, whichever chunk computes it and whoever its batch-mates are
   (windows of other contigs, padding copies); so a window's output never depends on
   the chunking. Several compiled batch sizes would break this: the size a window got
   would depend on how many windows of its length its chunk holds.
2. The float64 sum for a base adds its windows in start order. All windows covering
   one base have one length (SegmentNT windows lie inside A/C/G/T runs and a run uses
   one length; Enformer/Borzoi have one length), batches of one length are emitted in
   start order, and rows of a batch are in start order: so the merge adds them in start
   order, as every chunk containing the base does.

Memory: the merge accumulates in a preallocated ring of float64 sums over a *virtual
axis* (the chunk's owned bases, part after part). Its size is computed from the schedule
before any compute (the largest distance between the first base a not-yet-merged window
touches and the last base merged); the ``horizon`` rule above bounds it by about
``horizon`` bases whatever the contig or chunk length. Finished bases (no unmerged
window reaches them) are divided, quantised to uint8 codes and handed to a writer
thread (bounded queue) that encodes Parquet, so encoding overlaps the device.

Overlap of host and device work: while the device runs a batch, the host reads and
tokenises the next one and merges finished ones (``depth`` batches in flight); a
watcher thread waits for each device result and copies it to the host, timing when
the device finished, so the returned statistics split each batch into host
(read + tokenise), transfer, device, merge and write time, and give the fraction of
the chunk's wall time the device sat idle.

Reverse complement (``reverse_complement=True``): each window is also predicted on its
reverse complement, flipped back to forward coordinates, and averaged
``(p_fwd + p_rc) / 2`` before merging. Features are kept as they are, not swapped:
the published models were trained on annotations of both strands (a splice donor on
the minus strand is labelled ``splice_donor`` too), so the RC prediction of a feature at
a base is the same feature's prediction.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import queue
import threading
import time
from typing import Callable, Optional

import numpy as np

from . import signals, store
from .errors import GenosegError
from .store import PredictionWriter, base_metadata, quantize
from .windows import Geometry

log = logging.getLogger(__name__)

_COMPLEMENT = np.arange(256, dtype=np.uint8)
for _a, _b in zip("ACGTNacgtn", "TGCANtgcan"):
    _COMPLEMENT[ord(_a)] = ord(_b)
_TO_N = np.full(256, ord("N"), dtype=np.uint8)
for _a in "ACGTacgt":
    _TO_N[ord(_a)] = ord(_a)

_TAPERS: dict[int, np.ndarray] = {}
#: Batches a partial batch may trail the scan before it is sent padded (see ``horizon``).
LOOKAHEAD_BATCHES = 4
MIN_HORIZON = 1 << 18
#: Batches dispatched to the device ahead of the merge.
DEPTH = 2
#: Rows the merge handles at a time (a float64 block of 14 features: 448 KB).
BLOCK = 4096
#: Blocks of finished rows queued for the writer thread: two row groups. The writer
#: encodes a whole row group at once (0.1-0.2 s for 1 M rows); with less than one
#: row group of room the merge waited for it each time, and host and writer took turns
#: instead of overlapping (64 blocks: 1.2-1.6x slower host side, bench_predict.py
#: --host-rate). At most ~46 MB of rows (14 features).
WRITE_QUEUE = 2 * store.ROW_GROUP // BLOCK


def taper(P: int) -> np.ndarray:
    """Merge weights over ``P`` output positions (float64, > 0, symmetric)."""
    w = _TAPERS.get(P)
    if w is None:
        j = np.arange(P, dtype=np.float64)
        w = np.minimum(j + 1, P - j) / math.ceil(P / 2)
        _TAPERS[P] = w
    return w


# ------------------------------------------------------------------------- jobs
@dataclasses.dataclass(frozen=True)
class Jobs:
    """The windows one chunk computes, as arrays in job order (part, then start).

    ``vlo``/``vhi``: the owned bases a window's output covers, ``[vlo, vhi)`` on the
    chunk's virtual axis (owned bases of part 0, then part 1, ...); ``offset`` says
    where each part starts on it.
    """

    part: np.ndarray    # int64 [N]
    start: np.ndarray   # int64 [N] input start in the contig
    length: np.ndarray  # int64 [N] input length
    ostart: np.ndarray  # int64 [N] output start in the contig
    vlo: np.ndarray     # int64 [N]
    vhi: np.ndarray     # int64 [N]
    skip: np.ndarray    # int64 [N] output positions before vlo (outside the owned bases)
    offset: np.ndarray  # int64 [parts + 1]

    @classmethod
    def from_chunk(cls, chunk: dict, g: Geometry) -> "Jobs":
        parts = chunk["parts"]
        owned = np.array([p["owned"] for p in parts], np.int64).reshape(-1, 2)
        offset = np.concatenate([[0], np.cumsum(owned[:, 1] - owned[:, 0])]).astype(np.int64)
        rows = [(pi, int(s), int(n)) for pi, p in enumerate(parts) for s, n in p["compute"]]
        a = np.array(rows, np.int64).reshape(-1, 3)
        part, start, length = a[:, 0], a[:, 1], a[:, 2]
        span = {n: g.span(n) for n in np.unique(length).tolist()}
        s = np.array([span[n][0] for n in length.tolist()], np.int64)
        e = np.array([span[n][1] for n in length.tolist()], np.int64)
        ostart = start + s
        lo = np.maximum(ostart, owned[part, 0])
        hi = np.minimum(start + e, owned[part, 1])
        base = offset[part] - owned[part, 0]
        return cls(part, start, length, ostart, base + lo, base + np.maximum(hi, lo), lo - ostart, offset)

    def __len__(self) -> int:
        return int(self.part.size)


def schedule(length: np.ndarray, vlo: np.ndarray, vhi: np.ndarray, batch_size: int,
             horizon: int) -> list[np.ndarray]:
    """Group job indices into batches of one window length (see module docstring).

    A batch is emitted when ``batch_size`` jobs of its length are pending; a pending
    partial batch is emitted early when the next job's output end lies more than
    ``horizon`` virtual bases past its oldest job's output start (checked before the
    job joins, so every merge happens within ``horizon`` bases); the rest at the end,
    oldest first. Deterministic, in job order within each length.
    """
    pending: dict[int, list[int]] = {}
    out: list[list[int]] = []
    for j, (n, hi) in enumerate(zip(length.tolist(), vhi.tolist())):
        for m in [m for m, q in pending.items() if q and hi - vlo[q[0]] > horizon]:
            out.append(pending.pop(m))
        q = pending.setdefault(n, [])
        q.append(j)
        if len(q) == batch_size:
            out.append(pending.pop(n))
    out += sorted((q for q in pending.values() if q), key=lambda q: q[0])
    return [np.array(b, np.int64) for b in out]


def merge_plan(batches: list[np.ndarray], vlo: np.ndarray, vhi: np.ndarray) -> tuple[np.ndarray, int]:
    """``(flush_before [K], ring)``: before merging batch ``k`` every base below
    ``flush_before[k]`` is final (no later batch reaches it); ``ring`` is the most
    bases the merge ever holds (unfinished base to the furthest merged one)."""
    if not batches:
        return np.zeros(0, np.int64), 0
    lo = np.array([vlo[b].min() for b in batches], np.int64)
    hi = np.maximum.accumulate(np.array([vhi[b].max() for b in batches], np.int64))
    flush = np.minimum.accumulate(lo[::-1])[::-1]
    return flush, int(max(1, (hi - flush).max()))


# ------------------------------------------------------------------------ merge
class RingMerger:
    """Weighted sums over the virtual axis in a preallocated ring of ``2 * ring`` bases.

    ``add`` accumulates one window; ``flush(upto)`` finalises every base below ``upto``
    (mean, quantised to uint8 codes) and passes ``(contig, pos, codes)`` blocks to
    ``emit`` in order. Bases never covered (``den == 0``) give no row. Memory is fixed
    at construction: ``2 * ring * (F + 1) * 8`` bytes.
    """

    def __init__(self, ring: int, n_features: int, jobs: Jobs, parts: list[dict],
                 emit: Callable[[str, np.ndarray, np.ndarray], None]):
        cap = 2 * max(int(ring), 1)
        self.num = np.zeros((cap, n_features), np.float64)
        self.den = np.zeros(cap, np.float64)
        self._tmp = np.empty((BLOCK, n_features), np.float64)  # one weighted block, reused
        self.base = 0  # virtual coordinate of num[0]
        self.lo = 0    # first virtual base not flushed
        self.hi = 0    # end of the furthest window added
        self.offset = jobs.offset
        self.names = [p["contig"] for p in parts]
        self.owned_a = [int(p["owned"][0]) for p in parts]
        self.emit = emit
        self.rows = 0

    @property
    def nbytes(self) -> int:
        return self.num.nbytes + self.den.nbytes

    def add(self, windows: list[tuple[int, int, np.ndarray, np.ndarray]],
            final: Optional[int] = None) -> None:
        """Add windows ``(vlo, vhi, w, probs)`` (in start order): ``w[:, None] * probs``
        (``probs`` ``[vhi - vlo, F]`` float32, ``w`` float64) to bases ``[vlo, vhi)``;
        then :meth:`flush` up to ``final`` when given (no later window reaches below it).

        Done in cache-sized blocks of positions, adding every window that meets a block
        in turn and finalising the block at once when it is below ``final`` (the merge
        is bound by memory traffic: each sum row then goes through the cache once per
        batch, not once per window and again for the mean); per base the additions
        happen in window order, in float64, exactly as ``num += w[:, None] * probs``.
        """
        windows = [x for x in windows if x[1] > x[0]]
        if not windows:
            return
        lo, hi = min(x[0] for x in windows), max(x[1] for x in windows)
        if lo < self.lo:
            raise AssertionError(f"window at {lo} merged after base {self.lo} was flushed")
        if hi - self.base > self.den.size:
            self._compact(hi)
        self.hi = max(self.hi, hi)
        for a in range(lo, hi, BLOCK):
            b = min(a + BLOCK, hi)
            for vlo, vhi, w, probs in windows:
                x, y = max(a, vlo), min(b, vhi)
                if x >= y:
                    continue
                tmp = np.multiply(probs[x - vlo:y - vlo], w[x - vlo:y - vlo, None], out=self._tmp[:y - x])
                self.num[x - self.base:y - self.base] += tmp
                self.den[x - self.base:y - self.base] += w[x - vlo:y - vlo]
            if final is not None and b <= final:
                self.flush(b)
        if final is not None:
            self.flush(final)

    def _compact(self, need_end: int) -> None:
        """Move the live bases ``[lo, hi)`` to the ring start (amortised: the live span is
        at most half the ring, so this happens once per ``ring`` bases at most)."""
        k, s = max(self.hi - self.lo, 0), self.lo - self.base
        if need_end - self.lo > self.den.size:
            raise AssertionError(f"merge needs {need_end - self.lo} bases, ring holds {self.den.size}")
        if k:
            self.num[:k] = self.num[s:s + k]
            self.den[:k] = self.den[s:s + k]
        self.num[k:s + k] = 0.0
        self.den[k:s + k] = 0.0
        self.base = self.lo

    def flush(self, upto: int) -> None:
        """Finalise virtual bases ``[lo, upto)`` part by part (no window added later may
        reach below ``upto``)."""
        end = min(int(upto), self.hi)
        if end > self.lo:
            self._finalise(self.lo, end)
        self.lo = max(self.lo, int(upto))
        if self.lo >= self.hi:  # nothing live: restart the ring here (all zeros)
            self.base = self.hi = self.lo

    def _finalise(self, v: int, upto: int) -> None:
        p = int(np.searchsorted(self.offset, v, side="right")) - 1
        while v < upto:
            end = min(upto, int(self.offset[p + 1]), v + BLOCK)  # cache-sized pieces
            i, j = v - self.base, end - self.base
            num, den = self.num[i:j], self.den[i:j]
            first = self.owned_a[p] + v - int(self.offset[p])  # contig position of base v
            if den.all():  # the usual case: a slice, divided in place (zeroed below)
                pos = np.arange(first, first + (j - i), dtype=np.int64)
                probs = np.divide(num, den[:, None], out=num)
            else:
                keep = np.flatnonzero(den)
                pos = keep.astype(np.int64) + first
                probs = num[keep] / den[keep, None]
            if pos.size:
                self.emit(self.names[p], pos, quantize(probs.astype(np.float32)))
                self.rows += int(pos.size)
            self.num[i:j] = 0.0
            self.den[i:j] = 0.0
            v = end
            if v == int(self.offset[p + 1]):
                p += 1


# ------------------------------------------------------------------ device + writer
class _DeviceResults:
    """Collects device results in submission order on a watcher thread, recording when
    each batch finished on the device and how long the copy to the host took."""

    def __init__(self):
        self._in: queue.Queue = queue.Queue()
        self._out: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="genoseg-device", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            item = self._in.get()
            if item is None:
                return
            try:
                item["array"].block_until_ready()
                item["ready"] = time.perf_counter()
                item["array"] = np.asarray(item["array"])
                item["d2h_s"] = time.perf_counter() - item["ready"]
                self._out.put(item)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
                self._out.put(exc)

    def submit(self, item: dict) -> None:
        self._in.put(item)

    def next(self) -> dict:
        item = self._out.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._in.put(None)
        self._thread.join()


class _WriterThread:
    """Encodes Parquet on its own thread: ``put`` queues finished rows (blocking when
    ``maxsize`` blocks wait, so memory stays bounded); ``close`` waits for the file to be
    complete and re-raises any error of the writer in the caller's thread."""

    def __init__(self, writer: PredictionWriter, maxsize: int = WRITE_QUEUE):
        self.writer = writer
        self.error: Optional[BaseException] = None
        self.busy_s = 0.0
        self._q: queue.Queue = queue.Queue(maxsize)
        self._thread = threading.Thread(target=self._loop, name="genoseg-writer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                break
            if self.error is None:  # after an error: drain, so put() never blocks
                self._timed(lambda: self.writer.write(item[1], item[2], chrom=item[0]))
        failed = self.error is not None
        self._timed(lambda: self.writer.close(complete=not failed))  # never marked complete after an error

    def _timed(self, fn) -> None:
        t0 = time.perf_counter()
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            self.error = self.error or exc
        self.busy_s += time.perf_counter() - t0

    def put(self, chrom: str, pos: np.ndarray, codes: np.ndarray) -> None:
        if self.error is not None:
            raise self.error
        self._q.put((chrom, pos, codes))

    def close(self) -> None:
        self._q.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        """Stop after an error elsewhere: queued rows are dropped, the file is closed."""
        self.error = self.error or GenosegError("aborted")
        self._q.put(None)
        self._thread.join()


# ------------------------------------------------------------------------ chunk
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
    from . import windows

    return windows.read_chunk(path)


def _check_fasta(fasta, chunk: dict) -> None:
    for part in chunk["parts"]:
        try:
            n = fasta.length(part["contig"])
        except KeyError:
            raise GenosegError(f"{fasta.path}: contig {part['contig']!r} of the plan is not in this FASTA") from None
        if n != part["contig_length"]:
            raise GenosegError(f"{fasta.path}: contig {part['contig']!r} is {n} bp, the plan says "
                               f"{part['contig_length']}: not the FASTA the plan was made from")


def default_horizon(g: Geometry, batch_size: int) -> int:
    """Virtual bases a partial batch may trail the scan: :data:`LOOKAHEAD_BATCHES`
    batches of full-length windows plus one window's output, at least
    :data:`MIN_HORIZON` (the ring then holds at most ``2 * horizon * (F + 1) * 8``
    bytes: 63 MB for 14 features at the minimum, 122 MB for 30-kb windows, batch 8)."""
    s, e = g.span(g.window_length)
    return max(MIN_HORIZON, LOOKAHEAD_BATCHES * batch_size * g.step(g.window_length) + (e - s))


def predict_chunk(model, fasta, chunk: dict, out_path: str, batch_size: int = 8,
                  reverse_complement: bool = False, overwrite: bool = False,
                  progress_every: float = 30.0, horizon: Optional[int] = None) -> dict:
    """Predict one chunk and write its owned bases to ``out_path`` (Parquet, atomic).

    ``fasta`` is a :class:`genoseg.fasta.Fasta`. ``horizon``: see :func:`schedule`
    (default :func:`default_horizon`). Returns statistics (:func:`summarise`): windows
    needed and computed, padded-copy fraction, seconds per stage (host read+tokenise,
    transfer, device, merge, write), device-idle fraction, merge memory.
    """
    from .outputs import atomic_path

    if batch_size < 1:
        raise GenosegError("--batch-size must be at least 1")
    g = Geometry.from_json(chunk["geometry"])
    check_model(model, g)
    _check_fasta(fasta, chunk)
    features = list(model.features)
    meta = {**base_metadata(features, g.backbone), "kind": "chunk", "plan_id": chunk["plan_id"],
            "chunk": chunk["chunk"], "reverse_complement": bool(reverse_complement),
            "compute_dtype": getattr(model, "compute_dtype", None),
            "device": getattr(model, "device", None)}
    jobs = Jobs.from_chunk(chunk, g)
    batches = schedule(jobs.length, jobs.vlo, jobs.vhi, batch_size,
                       default_horizon(g, batch_size) if horizon is None else int(horizon))
    flush_before, ring = merge_plan(batches, jobs.vlo, jobs.vhi)
    run = _ChunkRun(model, fasta, chunk, g, jobs, batch_size, reverse_complement, progress_every)
    t_start = time.perf_counter()
    with atomic_path(out_path, overwrite=overwrite) as tmp:
        writer = _WriterThread(PredictionWriter(tmp, features, meta, with_chrom=True))
        merger = RingMerger(ring, len(features), jobs, chunk["parts"], writer.put)
        try:
            run.run(batches, flush_before, merger)
            t0 = time.perf_counter()
            writer.close()
            run.stats["write_wait_s"] += time.perf_counter() - t0
        except BaseException:
            writer.abort()
            raise
    out = summarise(run, chunk, batches, merger, writer, time.perf_counter() - t_start)
    log.info("chunk %d: %d windows (%d computed, %.1f%% padded copies), %d rows in %.1f s, device idle "
             "%.0f%%; per batch ms: host %.1f, transfer %.1f, device %.1f, merge %.1f, write %.1f -> %s",
             out["chunk"], out["windows"], out["computed_windows"], 100 * out["padded_fraction"],
             out["rows"], out["seconds"], 100 * out["device_idle_fraction"],
             *(out["per_batch_ms"][k] for k in ("host", "transfer", "device", "merge", "write")), out_path)
    return out


class _ChunkRun:
    """Runs the scheduled batches of one chunk: read + tokenise, dispatch (``DEPTH``
    batches in flight), merge in order; accumulates timings in ``stats``."""

    def __init__(self, model, fasta, chunk, g: Geometry, jobs: Jobs, batch_size: int, rc: bool,
                 progress_every: float):
        self.model, self.fasta, self.chunk, self.g, self.jobs = model, fasta, chunk, g, jobs
        self.batch_size, self.rc, self.progress_every = batch_size, rc, progress_every
        self.names = [p["contig"] for p in chunk["parts"]]
        self.stats: dict = {k: 0.0 for k in ("host_s", "h2d_s", "d2h_s", "device_s", "device_wait_s",
                                              "merge_s", "write_wait_s", "compile_s")}
        self.shapes: set = set()
        self.last_ready: Optional[float] = None

    def run(self, batches: list[np.ndarray], flush_before: np.ndarray, merger: RingMerger) -> None:
        device = _DeviceResults()
        merged, last_log, done = 0, time.perf_counter(), 0
        try:
            for k, b in enumerate(batches):
                signals.check()  # a SIGTERM/SIGINT stops here, between batches (genoseg.signals)
                tokens = self._prepare(b)
                t0 = time.perf_counter()
                arr = self.model.predict_tokens(tokens)
                t1 = time.perf_counter()
                first = tokens.shape not in self.shapes  # jit compiles in this call
                self.shapes.add(tokens.shape)
                self.stats["compile_s" if first else "h2d_s"] += t1 - t0
                device.submit({"k": k, "array": arr, "dispatched": t1 if first else t0})
                while k + 1 - merged > DEPTH:
                    done += self._merge(device, batches, merged, flush_before, merger)
                    merged += 1
                if time.perf_counter() - last_log > self.progress_every:
                    last_log = time.perf_counter()
                    log.info("chunk %d: %d/%d windows (%.0f%%)", self.chunk["chunk"], done, len(self.jobs),
                             100.0 * done / max(1, len(self.jobs)))
            while merged < len(batches):
                done += self._merge(device, batches, merged, flush_before, merger)
                merged += 1
            t0 = time.perf_counter()
            merger.flush(int(self.jobs.offset[-1]))
            self.stats["merge_s"] += time.perf_counter() - t0
        finally:
            device.close()

    def _prepare(self, b: np.ndarray) -> np.ndarray:
        """Tokens for batch ``b`` (job indices), padded to ``batch_size`` rows with
        copies of its last window (and followed by their reverse complements)."""
        t0 = time.perf_counter()
        j = self.jobs
        n = int(j.length[b[0]])
        seqs = np.empty((self.batch_size, n), np.uint8)
        for r, i in enumerate(b.tolist()):
            start = int(j.start[i])
            seqs[r] = self.fasta.fetch_bytes(self.names[j.part[i]], start, start + n)
        seqs[b.size:] = seqs[b.size - 1]
        if self.g.allows_n:
            seqs = _TO_N[seqs]  # other IUPAC codes are read as N
        if self.rc:
            s, e = self.g.span(n)
            if (s, e) != (n - e, n - s):
                raise GenosegError("reverse complement needs an output span centred in the window")
            seqs = np.concatenate([seqs, _COMPLEMENT[seqs][:, ::-1]])
        tokens = self.model.tokenize([row.tobytes().decode("ascii") for row in seqs])
        self.stats["host_s"] += time.perf_counter() - t0
        return tokens

    def _merge(self, device: _DeviceResults, batches: list, k: int, flush_before: np.ndarray,
               merger: RingMerger) -> int:
        """Merge batch ``k``'s result (waiting for it); returns its window count."""
        b = batches[k]
        t0 = time.perf_counter()
        item = device.next()
        t1 = time.perf_counter()
        self.stats["device_wait_s"] += t1 - t0
        self.stats["d2h_s"] += item["d2h_s"]
        began = item["dispatched"] if self.last_ready is None else max(item["dispatched"], self.last_ready)
        self.stats["device_s"] += max(0.0, item["ready"] - began)
        self.last_ready = item["ready"]
        a = item["array"]
        if self.rc:
            a = (a[:self.batch_size] + a[self.batch_size:][:, ::-1]) * np.float32(0.5)
        merger.flush(int(flush_before[k]))
        j, w = self.jobs, taper(a.shape[1])
        rows = []
        for r, i in enumerate(b.tolist()):
            lo, hi, skip = int(j.vlo[i]), int(j.vhi[i]), int(j.skip[i])
            rows.append((lo, hi, w[skip:skip + hi - lo], a[r, skip:skip + hi - lo]))
        merger.add(rows, int(flush_before[k + 1]) if k + 1 < len(batches) else int(j.offset[-1]))
        self.stats["merge_s"] += time.perf_counter() - t1
        return int(b.size)


def summarise(run: _ChunkRun, chunk: dict, batches: list, merger: RingMerger, writer: _WriterThread,
              seconds: float) -> dict:
    """The statistics ``predict_chunk`` returns (all times in seconds, wall clock).

    ``device_s`` is the time the device was busy (from a batch's dispatch or the
    previous batch's end, whichever is later, to its end); ``device_idle_fraction`` is
    ``1 - device_s / seconds``, where ``seconds`` runs from the start to the complete
    file (so start-up and the last write count as idle). ``transfer_s`` = host-to-device
    dispatch + device-to-host copies. ``compile_s``: the first call of each batch shape
    in this chunk (jit tracing and compiling, or a persistent-cache hit), counted as
    neither transfer nor device time. ``write_s`` is the writer thread's busy time
    (overlapped); ``write_wait_s`` what the chunk waited for it at the end.
    """
    s = run.stats
    n = len(run.jobs)
    computed = len(batches) * run.batch_size
    owned = int(run.jobs.offset[-1])
    out = {"chunk": chunk["chunk"], "windows": n, "computed_windows": computed,
           "padded_windows": computed - n, "padded_fraction": (computed - n) / computed if computed else 0.0,
           "batches": len(batches), "batch_size": run.batch_size, "owned_bases": owned, "rows": merger.rows,
           "seconds": seconds, "host_s": s["host_s"], "transfer_s": s["h2d_s"] + s["d2h_s"],
           "h2d_s": s["h2d_s"], "d2h_s": s["d2h_s"], "device_s": s["device_s"], "compile_s": s["compile_s"],
           "device_wait_s": s["device_wait_s"], "merge_s": s["merge_s"], "write_s": writer.busy_s,
           "write_wait_s": s["write_wait_s"],
           "device_idle_fraction": max(0.0, 1.0 - s["device_s"] / seconds) if seconds > 0 else 0.0,
           "merge_ring_bases": merger.den.size, "merge_ring_mb": merger.nbytes / 2**20,
           "merge_bases_per_s": owned / s["merge_s"] if s["merge_s"] > 0 else 0.0}
    per = max(1, len(batches)) / 1000.0
    out["per_batch_ms"] = {"host": s["host_s"] / per, "transfer": out["transfer_s"] / per,
                           "device": s["device_s"] / per, "merge": s["merge_s"] / per,
                           "write": writer.busy_s / per}
    return out
