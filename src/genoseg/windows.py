"""Window layout and chunking for genome runs (``genoseg plan``).

All coordinates are 0-based, half-open, in bases of the contig. A window is
``(start, length)``: its input is bases ``[start, start + length)`` (for backbones that
accept N, ``start`` may be negative and the end may pass the contig end: those bases are
padding N). Its output span is ``[start + s, start + e)`` where ``(s, e)`` is the
backbone's ``output_span(length)``.

Layout (per contig, independent of chunking):

* SegmentNT (A/C/G/T only): windows lie inside maximal runs of A/C/G/T (either case).
  A run of ``R`` bases gets windows of the largest allowed length ``<= R`` among
  ``L, L/2, L/4, L/8, L/16`` (each rounded down to the 24-bp multiple; at most five
  distinct lengths, i.e. five compiles); runs shorter than the smallest length
  (:attr:`Geometry.min_window_length`) are skipped and reported. Windows start at the
  run start every ``step`` bases and the last one is aligned to the run end, so every
  base of a run that is long enough is covered.
* SegmentEnformer / SegmentBorzoi (N allowed): output spans of length ``P`` tile the
  contig from base 0 every ``step`` bases, the last one aligned to the contig end; the
  input window extends ``s`` bases before and ``L - e`` after its output span, padded
  with N outside the contig. Every base gets a prediction except under windows whose
  whole input is N (or other IUPAC codes, which the models read as N); those windows
  are skipped.

``step = round(P * (1 - overlap))`` with ``overlap`` 0.5 by default (at most
:data:`MAX_OVERLAP`: each base is computed about ``1 / (1 - overlap)`` times).

Chunking (one ``genoseg predict`` task per chunk): the windows of all contigs, in
contig order then start order, are cut into consecutive groups of about equal model
*work* (:class:`ChunkSizing`): every ``chunk_seconds`` of estimated model time
(``--chunk-seconds``, the default of ``genoseg plan``), into ``target_chunks`` equal
parts (``--target-chunks``), or every ``windows_per_chunk`` windows
(``--windows-per-chunk``). A window's time is estimated from its length
(:func:`window_seconds`), so the shorter SegmentNT windows of short A/C/G/T runs count
for less. A chunk *owns* the bases from the output start of its first window in a
contig (0 if that is the contig's first window) to the output start of the next
chunk's first window (the contig end if none), and computes every window whose output
span meets its owned bases — including windows listed in neighbouring chunks — so the
merged value of a base does not depend on the chunking.

Plans are identified by :func:`plan_id`, a hash of what decides the predictions (the
FASTA's index, the geometry, the contig selection and the chunks), never of paths or
times, so the same command gives the same id (``-resume`` and annotate's resume rely on
it). ``plan.json`` and the chunk files hold no absolute paths.
"""

from __future__ import annotations

import contextlib
import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
from typing import Iterable, Optional, Union

import numpy as np

from . import jsonfile
from .errors import GenosegError

log = logging.getLogger(__name__)

PLAN_FORMAT = "genoseg-plan/1"
CHUNK_FORMAT = "genoseg-chunk/1"
DEFAULT_OVERLAP = 0.5
#: Largest ``--overlap``: 0.9 already computes every base about 10 times.
MAX_OVERLAP = 0.9
NT_LEVELS = (1, 2, 4, 8, 16)  # SegmentNT window lengths: L / level, rounded to the multiple

#: Per-backbone defaults for planning without weights: default input length, input
#: length multiple, whether N is accepted, and the output length (None = whole input).
BACKBONE_TABLE = {
    "segment_nt": dict(window_length=30_000, length_multiple=24, allows_n=False, output_length=None),
    "segment_nt_multi_species": dict(window_length=30_000, length_multiple=24, allows_n=False, output_length=None),
    "segment_enformer": dict(window_length=196_608, length_multiple=128, allows_n=True, output_length=None),
    "segment_borzoi": dict(window_length=524_288, length_multiple=128, allows_n=True, output_length=196_608),
}

#: Model time per window used to size chunks: ``(seconds per window of the backbone's
#: default length on one GPU in float32, share of that work growing with the square of
#: the length)``. The seconds are MEASURED on one H200 (random weights at the published
#: sizes, ``benchmarks/bench_gpu.py``, jax 0.11.2): SegmentNT 30 kb 0.092 s (batch 8,
#: XLA's dot_product attention; 0.018 s in bfloat16 with cuDNN's fused kernel),
#: SegmentEnformer 196,608 bp 0.021 s and SegmentBorzoi 524,288 bp 0.039 s (batch 1;
#: 0.012 s and 0.023 s in bfloat16). The quadratic share is fitted to the forward FLOPs
#: at other lengths (XLA cost analysis; SegmentNT: attention over L/6 tokens, 37 %;
#: Enformer: 1,536 tokens, 5 %; Borzoi's fixed 196,608-bp head makes its cost grow
#: slower than linearly: counted as linear).
WORK_TABLE = {
    "segment_nt": (0.092, 0.37),
    "segment_nt_multi_species": (0.092, 0.37),
    "segment_enformer": (0.021, 0.05),
    "segment_borzoi": (0.039, 0.0),
}
#: ``genoseg plan``'s default target of model time per chunk (float32 seconds of
#: :data:`WORK_TABLE`): about 6,500 full SegmentNT windows, 32 tasks for hg38, so that the
#: fixed cost of a task (start, weights, trace and warm-cache compile of up to five window
#: shapes: ~8 s measured on an H200 node) stays under 10 % of its model time in bfloat16
#: too (~2 min per task there; see README, "Task sizing").
DEFAULT_CHUNK_SECONDS = 600.0
#: ``genoseg annotate``'s default (one process: no per-task start-up to amortise).
DEFAULT_WINDOWS_PER_CHUNK = 64


@dataclasses.dataclass(frozen=True)
class Geometry:
    """What the layout needs to know about a backbone (no weights needed).

    ``spans`` maps each allowed window length to its output span ``(s, e)``.
    """

    backbone: str
    window_length: int
    length_multiple: int
    allows_n: bool
    window_lengths: tuple[int, ...]  # allowed lengths, longest first
    spans: dict
    overlap: float = DEFAULT_OVERLAP

    @property
    def min_window_length(self) -> int:
        return min(self.window_lengths)

    def span(self, length: int) -> tuple[int, int]:
        return tuple(self.spans[int(length)])

    def step(self, length: int) -> int:
        s, e = self.span(length)
        return max(1, int(round((e - s) * (1.0 - self.overlap))))

    def to_json(self) -> dict:
        return {
            "backbone": self.backbone, "window_length": self.window_length,
            "length_multiple": self.length_multiple, "allows_n": self.allows_n,
            "window_lengths": list(self.window_lengths),
            "min_window_length": self.min_window_length,
            "output_spans": {str(k): list(v) for k, v in self.spans.items()},
            "steps": {str(k): self.step(k) for k in self.window_lengths},
            "overlap": self.overlap,
        }

    @classmethod
    def from_json(cls, d: dict) -> "Geometry":
        return cls(backbone=d["backbone"], window_length=int(d["window_length"]),
                   length_multiple=int(d["length_multiple"]), allows_n=bool(d["allows_n"]),
                   window_lengths=tuple(int(x) for x in d["window_lengths"]),
                   spans={int(k): tuple(v) for k, v in d["output_spans"].items()},
                   overlap=float(d["overlap"]))


#: Keys :meth:`Geometry.from_json` reads (checked by :func:`read_plan` / :func:`read_chunk`).
GEOMETRY_KEYS = ("backbone", "window_length", "length_multiple", "allows_n", "window_lengths",
                 "output_spans", "overlap")


def _check_window_length(window_length: Optional[int], default: int, multiple: int) -> int:
    """``--window-length`` (``None``: the default), refused unless a positive multiple."""
    if window_length is None:
        return int(default)
    if int(window_length) != window_length or window_length <= 0 or window_length % multiple:
        raise GenosegError(f"--window-length {window_length}: must be a positive multiple of {multiple} bp "
                           f"(leave it out for the model's default, {default})")
    return int(window_length)


def _lengths_for(backbone_nt: bool, window_length: int, multiple: int) -> tuple[int, ...]:
    if window_length % multiple or window_length <= 0:
        raise GenosegError(f"window length {window_length} must be a positive multiple of {multiple}")
    if not backbone_nt:
        return (window_length,)
    out = []
    for level in NT_LEVELS:
        n = window_length // level // multiple * multiple
        if n >= multiple and n not in out:
            out.append(n)
    return tuple(out)


def geometry_from_model(model, window_length: Optional[int] = None,
                        overlap: float = DEFAULT_OVERLAP) -> Geometry:
    """Geometry of a loaded model object (any object with the model API)."""
    backbone = model.backbone
    table = BACKBONE_TABLE.get(backbone, {})
    multiple = int(getattr(model, "length_multiple", table.get("length_multiple", 1)))
    L = _check_window_length(window_length, model.window_length, multiple)
    allows_n = bool(getattr(model, "allows_n", table.get("allows_n", not backbone.startswith("segment_nt"))))
    check_overlap(overlap)
    lengths = _lengths_for(not allows_n, L, multiple)
    spans = {n: tuple(int(x) for x in model.output_span(n)) for n in lengths}
    return _checked(Geometry(backbone, L, multiple, allows_n, lengths, spans, float(overlap)))


def geometry_for(backbone: Optional[str], model_dir: Optional[str] = None,
                 window_length: Optional[int] = None, overlap: float = DEFAULT_OVERLAP) -> Geometry:
    """Geometry from the per-backbone table, refined by the model directory's small
    config files (``config.json``, ``jax_model/hyperparams.json``) — never its weights."""
    check_overlap(overlap)
    cfg: dict = {}
    if model_dir is not None:
        from .models import detect_backbone, read_config_json

        if not os.path.isdir(model_dir):
            raise GenosegError(f"model directory not found: {model_dir}")
        cfg = read_config_json(model_dir)
        backbone = backbone or detect_backbone(model_dir)
    if backbone is None:
        raise GenosegError("give --backbone or --model")
    if backbone not in BACKBONE_TABLE:
        raise GenosegError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONE_TABLE)}")
    t = dict(BACKBONE_TABLE[backbone])
    if backbone.startswith("segment_nt"):
        if model_dir is not None:
            hp = os.path.join(model_dir, "jax_model", "hyperparams.json")
            if os.path.isfile(hp):
                with open(hp) as fh:
                    t["length_multiple"] = int(json.load(fh).get("k_for_kmers", 6)) * 4
    else:
        div = int(cfg.get("dim_divisible_by", 0) or 0)
        down = int(cfg.get("num_downsamples", 0) or 0)
        if div or down:
            t["length_multiple"] = max(div, 2 ** down, 1)
        if backbone == "segment_borzoi" and cfg.get("target_length", -1) not in (None, -1) and div:
            t["output_length"] = int(cfg["target_length"]) * div
    m = int(t["length_multiple"])
    L = _check_window_length(window_length, int(cfg.get("window_length") or t["window_length"]), m)
    lengths = _lengths_for(not t["allows_n"], L, m)
    spans = {}
    for n in lengths:
        P = t["output_length"] or n
        if P > n or (n - P) % 2:
            raise GenosegError(f"{backbone}: window length {n} cannot hold an output of {P} bases")
        spans[n] = ((n - P) // 2, (n - P) // 2 + P)
    return _checked(Geometry(backbone, L, m, bool(t["allows_n"]), lengths, spans, float(overlap)))


def check_overlap(overlap: float) -> None:
    if not (0.0 <= overlap <= MAX_OVERLAP):  # also refuses NaN
        raise GenosegError(
            f"--overlap {overlap}: must be between 0 and {MAX_OVERLAP} (the share of a window's output "
            f"that the next window repeats; each base is computed about 1/(1 - overlap) times)")


def _checked(g: Geometry) -> Geometry:
    check_overlap(g.overlap)
    for n, (s, e) in g.spans.items():
        if not 0 <= s < e <= n:
            raise GenosegError(f"{g.backbone}: bad output span {(s, e)} for length {n}")
    return g


# ------------------------------------------------------------------------------ work
def window_seconds(g: Geometry, lengths, seconds_per_window: Optional[float] = None) -> np.ndarray:
    """Estimated model seconds of windows of the given input ``lengths`` (float64).

    ``seconds_per_window``: seconds of one window of the plan's window length
    (``g.window_length``); ``None`` takes the backbone's estimate (:data:`WORK_TABLE`).
    Other lengths scale with ``(1 - q) x + q x**2`` (``x`` the length ratio, ``q`` the
    backbone's quadratic share).
    """
    ref_s, q = WORK_TABLE.get(g.backbone, (WORK_TABLE["segment_nt"][0], 0.0))
    ref_len = BACKBONE_TABLE.get(g.backbone, {}).get("window_length", g.window_length)

    def rel(x):
        return (1.0 - q) * x + q * x * x

    x = np.asarray(lengths, np.float64) / ref_len
    if seconds_per_window is None:
        return ref_s * rel(x)
    return float(seconds_per_window) * rel(x) / rel(g.window_length / ref_len)


@dataclasses.dataclass(frozen=True)
class ChunkSizing:
    """How windows are grouped into chunks: exactly one of ``windows_per_chunk``
    (``--windows-per-chunk``), ``chunk_seconds`` (``--chunk-seconds``: estimated model
    seconds per chunk) or ``target_chunks`` (``--target-chunks``: that many chunks of
    equal estimated work, fewer when there are fewer windows). ``seconds_per_window``
    (``--seconds-per-window``) replaces the backbone's estimate (seconds of one window
    of the plan's window length on the GPU the run will use)."""

    windows_per_chunk: Optional[int] = None
    chunk_seconds: Optional[float] = None
    target_chunks: Optional[int] = None
    seconds_per_window: Optional[float] = None

    def __post_init__(self):
        given = [n for n in ("windows_per_chunk", "chunk_seconds", "target_chunks") if getattr(self, n) is not None]
        if len(given) != 1:
            raise GenosegError("give one of --windows-per-chunk, --chunk-seconds and --target-chunks"
                               + (f" (got {', '.join('--' + n.replace('_', '-') for n in given)})" if given else ""))
        for name in given + (["seconds_per_window"] if self.seconds_per_window is not None else []):
            v = getattr(self, name)
            integer = name in ("windows_per_chunk", "target_chunks")
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0) or (integer and int(v) != v):
                kind = "a whole number, at least 1" if integer else "a positive number of seconds"
                raise GenosegError(f"--{name.replace('_', '-')} {v}: must be {kind}")

    @classmethod
    def from_options(cls, windows_per_chunk: Optional[int] = None, chunk_seconds: Optional[float] = None,
                     target_chunks: Optional[int] = None, seconds_per_window: Optional[float] = None,
                     default: str = "chunk_seconds") -> "ChunkSizing":
        """The sizing of command-line options; when none of the three sizes is given,
        ``default`` (``"chunk_seconds"``, plan's, or ``"windows_per_chunk"``, annotate's)
        with its default value."""
        if windows_per_chunk is None and chunk_seconds is None and target_chunks is None:
            if default == "chunk_seconds":
                chunk_seconds = DEFAULT_CHUNK_SECONDS
            else:
                windows_per_chunk = DEFAULT_WINDOWS_PER_CHUNK
        return cls(windows_per_chunk, chunk_seconds, target_chunks, seconds_per_window)

    @classmethod
    def of(cls, value: Union[int, "ChunkSizing"]) -> "ChunkSizing":
        """A sizing as given; a plain number means ``windows_per_chunk``."""
        return value if isinstance(value, cls) else cls(windows_per_chunk=value)

    def chunk_index(self, seconds: np.ndarray) -> np.ndarray:
        """Chunk number of each window (non-decreasing, consecutive from 0) given the
        windows' estimated ``seconds`` in plan order. A window goes to the chunk in
        which the middle of its share of the cumulative work falls."""
        n = seconds.size
        if self.windows_per_chunk is not None:
            return np.arange(n, dtype=np.int64) // int(self.windows_per_chunk)
        if n == 0:
            return np.zeros(0, np.int64)
        cum = np.cumsum(seconds)
        budget = self.chunk_seconds if self.chunk_seconds is not None else cum[-1] / int(self.target_chunks)
        idx = np.floor((cum - 0.5 * seconds) / budget).astype(np.int64)
        if self.target_chunks is not None:
            idx = np.minimum(idx, int(self.target_chunks) - 1)
        return np.unique(idx, return_inverse=True)[1].astype(np.int64)  # no empty chunks

    def to_json(self, g: Geometry) -> dict:
        return {"windows_per_chunk": self.windows_per_chunk, "chunk_seconds": self.chunk_seconds,
                "target_chunks": self.target_chunks,
                "seconds_per_window": float(window_seconds(g, [g.window_length], self.seconds_per_window)[0]),
                "seconds_per_window_source": "--seconds-per-window" if self.seconds_per_window is not None
                else "measured (one H200, float32; genoseg.windows.WORK_TABLE)"}


# --------------------------------------------------------------------------- layout
@dataclasses.dataclass
class GenomeLayout:
    """Windows of all planned contigs, contig-major then by start, as flat arrays
    (output starts strictly increasing and output ends non-decreasing within a contig).

    Contig ``c`` owns windows ``offsets[c]:offsets[c + 1]``; ``skipped_*`` are the
    SegmentNT A/C/G/T runs too short for the smallest window; ``all_n_windows`` counts
    per contig the windows left out because their whole input is N (N-allowed backbones).
    """

    names: list[str]
    contig_lengths: np.ndarray    # int64 [C]
    offsets: np.ndarray           # int64 [C + 1]
    starts: np.ndarray            # int64 [W] input starts (contig coordinates)
    lengths: np.ndarray           # int64 [W] input lengths
    skipped_contig: np.ndarray    # int64 [S] contig of each skipped run
    skipped_starts: np.ndarray    # int64 [S]
    skipped_ends: np.ndarray      # int64 [S]
    all_n_windows: np.ndarray     # int64 [C]

    @property
    def n_windows(self) -> int:
        return int(self.starts.size)

    def contig_of_windows(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.names), dtype=np.int64), np.diff(self.offsets))

    def covered_bases(self, g: Geometry) -> np.ndarray:
        """Per contig, the bases inside at least one output span (int64 [C])."""
        c = self.contig_of_windows()
        base = np.concatenate([[0], np.cumsum(self.contig_lengths)])[:-1]  # genome coordinate of each contig
        s, e = output_bounds(g, self.starts, self.lengths)
        n = self.contig_lengths[c]
        s, e = np.clip(s, 0, n) + base[c], np.clip(e, 0, n) + base[c]
        prev_end = np.concatenate([[0], np.maximum.accumulate(e)[:-1]]) if e.size else e
        new = np.maximum(0, e - np.maximum(s, prev_end))
        return np.bincount(c, weights=new, minlength=len(self.names)).astype(np.int64)


@dataclasses.dataclass
class ContigLayout:
    """Windows of one contig (see :class:`GenomeLayout`)."""

    name: str
    length: int
    starts: np.ndarray   # int64 input starts
    lengths: np.ndarray  # int64 input lengths
    skipped_runs: tuple[np.ndarray, np.ndarray]  # SegmentNT runs too short (starts, ends)
    skipped_windows: int  # N-allowed backbones: all-N windows left out

    def output_bounds(self, g: Geometry) -> tuple[np.ndarray, np.ndarray]:
        return output_bounds(g, self.starts, self.lengths)


def output_bounds(g: Geometry, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Output spans ``(starts, ends)`` of windows ``(starts, lengths)`` (int64 arrays)."""
    s = np.zeros_like(starts)
    e = np.zeros_like(starts)
    for n in g.window_lengths:
        sel = lengths == n
        a, b = g.span(n)
        s[sel] = starts[sel] + a
        e[sel] = starts[sel] + b
    return s, e


def _tile(run_starts: np.ndarray, run_len: np.ndarray, win: np.ndarray, step: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray]:
    """Starts of windows of length ``win[i]`` tiling ``[run_starts[i], +run_len[i])``
    every ``step[i]``, the last aligned to the end (vectorised over runs), and the
    number of windows of each run."""
    span = run_len - win
    counts = span // step + 1 + (span % step != 0).astype(np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64), counts
    first = np.repeat(np.cumsum(counts) - counts, counts)
    k = np.arange(total, dtype=np.int64) - first
    out = np.repeat(run_starts, counts) + k * np.repeat(step, counts)
    out[np.cumsum(counts) - 1] = run_starts + span  # aligned to the end (== regular when it fits)
    return out, counts


def layout_genome(names: list[str], lengths, runs: list[tuple[np.ndarray, np.ndarray]],
                  g: Geometry) -> GenomeLayout:
    """Windows of every contig from its A/C/G/T runs ``(starts, ends)`` (see the module
    docstring); vectorised over all runs and contigs, so time grows with bases and
    runs, not with a per-contig cost."""
    lengths = np.asarray(lengths, np.int64).reshape(-1)
    nc = len(names)
    per = np.array([r[0].size for r in runs], np.int64)
    run_contig = np.repeat(np.arange(nc, dtype=np.int64), per)
    rs = np.concatenate([r[0] for r in runs]).astype(np.int64) if nc else np.zeros(0, np.int64)
    re_ = np.concatenate([r[1] for r in runs]).astype(np.int64) if nc else np.zeros(0, np.int64)
    empty = np.zeros(0, np.int64)
    if not g.allows_n:
        levels = np.array(g.window_lengths[::-1], np.int64)  # ascending
        idx = np.searchsorted(levels, re_ - rs, side="right") - 1
        ok = idx >= 0
        win = levels[idx[ok]]
        steps = np.array([g.step(int(n)) for n in levels], np.int64)[idx[ok]]
        starts, counts = _tile(rs[ok], (re_ - rs)[ok], win, steps)
        wl = np.repeat(win, counts)
        wc = np.repeat(run_contig[ok], counts)
        offsets = np.concatenate([[0], np.cumsum(np.bincount(wc, minlength=nc))]).astype(np.int64)
        return GenomeLayout(list(names), lengths, offsets, starts, wl, run_contig[~ok], rs[~ok], re_[~ok],
                            np.zeros(nc, np.int64))
    L = g.window_length
    s, e = g.span(L)
    P = e - s
    ostarts, counts = _tile(np.zeros(nc, np.int64), np.maximum(lengths, P), np.full(nc, P, np.int64),
                            np.full(nc, g.step(L), np.int64))
    wc = np.repeat(np.arange(nc, dtype=np.int64), counts)
    starts = ostarts - s
    # keep windows whose input (clipped to the contig) holds an A/C/G/T base; runs and
    # windows are compared in genome coordinates (contigs laid end to end)
    base = np.concatenate([[0], np.cumsum(lengths)])[:-1]
    a = np.clip(starts, 0, lengths[wc]) + base[wc]
    b = np.clip(starts + L, 0, lengths[wc]) + base[wc]
    grs, gre = rs + base[run_contig], re_ + base[run_contig]
    j = np.searchsorted(gre, a, side="right")
    has = (j < grs.size) & (grs[np.minimum(j, max(grs.size - 1, 0))] < b) if grs.size else np.zeros(a.size, bool)
    kept = np.bincount(wc[has], minlength=nc)
    offsets = np.concatenate([[0], np.cumsum(kept)]).astype(np.int64)
    return GenomeLayout(list(names), lengths, offsets, starts[has], np.full(int(has.sum()), L, np.int64),
                        empty, empty, empty, counts - kept)


def layout_contig(name: str, length: int, runs: tuple[np.ndarray, np.ndarray], g: Geometry) -> ContigLayout:
    """Windows of one contig from its A/C/G/T runs (see :func:`layout_genome`)."""
    lay = layout_genome([name], [length], [runs], g)
    return ContigLayout(name, int(length), lay.starts, lay.lengths, (lay.skipped_starts, lay.skipped_ends),
                        int(lay.all_n_windows[0]))


# -------------------------------------------------------------------------- chunking
def make_chunks(lay: GenomeLayout, g: Geometry, sizing: Union[int, ChunkSizing]) -> list[dict]:
    """Cut the windows of all contigs into chunk descriptions (see module docstring).

    ``sizing``: a :class:`ChunkSizing`, or a number of windows per chunk. Each chunk:
    ``{"chunk", "n_windows", "work_seconds", "parts": [{"contig", "contig_length",
    "owned": [a, b], "first_window", "n_windows", "reads": [lo, hi], "compute":
    [[start, length], ...]}]}`` where ``first_window``/``n_windows`` index the contig's
    windows this chunk lists, ``compute`` are all windows (in start order) whose output
    meets ``[a, b)``, ``reads`` the bases of the contig they read (clipped to the
    contig) and ``work_seconds`` the estimated model time of all compute windows.
    Time and memory grow with windows + contigs (10^5 scaffolds plan in seconds).
    """
    sizing = ChunkSizing.of(sizing)
    total = lay.n_windows
    if total == 0:
        return []
    starts, lens, offsets = lay.starts, lay.lengths, lay.offsets
    os_, oe = output_bounds(g, starts, lens)
    contig_of = lay.contig_of_windows()
    inner = contig_of[1:] == contig_of[:-1]
    if np.any((np.diff(os_) <= 0) & inner) or np.any((np.diff(oe) < 0) & inner):
        raise AssertionError("window layout is not monotone")
    seconds = window_seconds(g, lens, sizing.seconds_per_window)
    cuts = np.flatnonzero(np.diff(sizing.chunk_index(seconds))) + 1
    w0 = np.concatenate([[0], cuts]).astype(np.int64)       # first window of each chunk
    w1 = np.concatenate([cuts, [total]]).astype(np.int64)   # one past its last
    # parts: one per (chunk, contig) pair with listed windows, in order
    c0, c1 = contig_of[w0], contig_of[w1 - 1]
    n_parts = c1 - c0 + 1
    part_chunk = np.repeat(np.arange(w0.size), n_parts)
    part_contig = np.repeat(c0, n_parts) + (np.arange(int(n_parts.sum())) - np.repeat(np.cumsum(n_parts) - n_parts, n_parts))
    off, end = offsets[part_contig], offsets[part_contig + 1]
    lo, hi = np.maximum(w0[part_chunk], off), np.minimum(w1[part_chunk], end)
    length = lay.contig_lengths[part_contig]
    a = np.where(lo == off, 0, np.maximum(0, os_[np.minimum(lo, total - 1)]))
    b = np.where(hi == end, length, np.minimum(length, os_[np.minimum(hi, total - 1)]))
    # compute windows [k0, k1): output end > a and output start < b, found in one
    # global search on keys that keep contigs apart (output bounds lie in [-Q, n + Q])
    Q = int(max(g.window_lengths))
    key0 = np.concatenate([[0], np.cumsum(lay.contig_lengths + 2 * Q)])[:-1] + Q
    k0 = np.searchsorted(key0[contig_of] + oe, key0[part_contig] + a, side="right")
    k1 = np.searchsorted(key0[contig_of] + os_, key0[part_contig] + b, side="left")
    cum = np.concatenate([[0.0], np.cumsum(seconds)])
    part_work = cum[k1] - cum[k0]
    reads_lo = np.maximum(0, starts[k0])
    reads_hi = np.minimum(length, starts[k1 - 1] + lens[k1 - 1])
    pairs = np.stack([starts, lens], axis=1).tolist()
    chunks = [{"chunk": k, "n_windows": int(n), "work_seconds": 0.0, "parts": []}
              for k, n in enumerate((w1 - w0).tolist())]
    for k, ci, a_, b_, lo_, hi_, off_, k0_, k1_, r0, r1, wk in zip(
            part_chunk.tolist(), part_contig.tolist(), a.tolist(), b.tolist(), lo.tolist(), hi.tolist(),
            off.tolist(), k0.tolist(), k1.tolist(), reads_lo.tolist(), reads_hi.tolist(), part_work.tolist()):
        ch = chunks[k]
        ch["work_seconds"] += wk
        ch["parts"].append({"contig": lay.names[ci], "contig_length": int(lay.contig_lengths[ci]),
                            "owned": [a_, b_], "first_window": lo_ - off_, "n_windows": hi_ - lo_,
                            "reads": [r0, r1], "compute": pairs[k0_:k1_]})
    for ch in chunks:
        ch["work_seconds"] = round(ch["work_seconds"], 3)
    return chunks


# ------------------------------------------------------------------------------ plan
#: Plan keys that describe the run but do not decide its predictions (not hashed).
_NOT_IN_ID = ("plan_id", "genoseg_version", "genome", "fasta", "model", "chunking", "windows_per_chunk")


def plan_id(plan: dict, layout_digest: str) -> str:
    """Deterministic id of a plan: a hash of the FASTA's identity (index checksum, or
    names and lengths), the geometry, the contig selection, what was skipped and the
    windows and chunk cuts (``layout_digest``, :func:`layout_digest`). Paths, file
    names, times, estimates and the genoseg version are left out, so the same inputs
    give the same id wherever and whenever they are planned."""
    ident = {k: v for k, v in plan.items() if k not in _NOT_IN_ID}
    ident["fasta_identity"] = (plan.get("fasta") or {}).get("identity")
    ident["layout"] = layout_digest
    blob = json.dumps(ident, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def layout_digest(lay: GenomeLayout, chunks: list[dict]) -> str:
    """SHA-256 of the windows and the chunk cuts, which (with the geometry) decide
    every chunk's owned bases and compute windows; hashed as arrays, not as JSON."""
    h = hashlib.sha256(CHUNK_FORMAT.encode())
    h.update("\0".join(lay.names).encode())
    for arr in (lay.contig_lengths, lay.offsets, lay.starts, lay.lengths, [ch["n_windows"] for ch in chunks]):
        h.update(np.ascontiguousarray(arr, dtype="<i8").tobytes())
    return h.hexdigest()


def fasta_source(fa) -> dict:
    """How a plan records its FASTA: file name and size (for people) and its identity,
    the MD5 of the ``.fai`` index (every record's name, length and line layout: cheap
    and changes with any record). Never a directory."""
    with open(fa.fai, "rb") as fh:
        md5 = hashlib.md5(fh.read()).hexdigest()
    return {"name": os.path.basename(fa.path), "bytes": os.path.getsize(fa.path),
            "identity": f"fai-md5:{md5}"}


def lengths_source(records: list[tuple[str, int]]) -> dict:
    """:func:`fasta_source` for a plan made from contig lengths alone."""
    md5 = hashlib.md5("".join(f"{n}\t{L}\n" for n, L in records).encode()).hexdigest()
    return {"name": None, "bytes": None, "identity": f"lengths-md5:{md5}"}


def make_plan(fasta_path, g: Geometry, outdir: Optional[str],
              sizing: Union[int, ChunkSizing] = DEFAULT_WINDOWS_PER_CHUNK,
              contigs: Optional[list[str]] = None, contig_regex: Optional[str] = None,
              min_contig_length: int = 1, overwrite: bool = False, model_dir: Optional[str] = None,
              max_listed_skips: int = 1000, *, stage_sequences: bool = False) -> tuple[dict, list[dict]]:
    """Validate the FASTA (a path or an open :class:`genoseg.fasta.Fasta`), lay out
    windows and cut chunks.

    ``sizing``: a :class:`ChunkSizing` or a number of windows per chunk. Writes
    ``outdir/plan.json`` and ``outdir/chunks/chunk_NNNNN.json`` (atomically; refuses to
    replace them unless ``overwrite``) when ``outdir`` is given, and with
    ``stage_sequences`` each chunk's sequence (:mod:`genoseg.staging`). Returns
    ``(plan, chunks)`` where each chunk dict is exactly what its file holds.
    """
    from .fasta import Fasta, scan_contigs, select_contigs

    sizing = ChunkSizing.of(sizing)
    if outdir is not None:
        check_plan_absent(outdir, overwrite)
    # a path, or an open Fasta whose index the caller chose (--fai, read-only directories)
    with contextlib.nullcontext(fasta_path) if isinstance(fasta_path, Fasta) else Fasta(fasta_path) as fa:
        used, skipped = select_contigs(fa.contigs, contigs, contig_regex, min_contig_length, fa.path)
        if not used:
            raise GenosegError(f"{fa.path}: no contigs selected ({len(skipped)} left out; see --contigs, "
                               "--contig-regex, --min-contig-length)")
        runs = scan_contigs(fa, [c.name for c in used])
        lay = layout_genome([c.name for c in used], [c.length for c in used], runs, g)
        selection = {"contigs": contigs, "contig_regex": contig_regex, "min_contig_length": min_contig_length}
        plan, chunks = build_plan(lay, g, sizing, fasta_source(fa), selection, skipped, max_listed_skips)
        plan["model"] = os.path.basename(os.path.normpath(model_dir)) if model_dir else None
        if outdir is not None:
            write_plan(outdir, plan, chunks, overwrite, sequences_from=fa if stage_sequences else None)
    return plan, chunks


def plan_from_lengths(records: Iterable[tuple[str, int]], g: Geometry,
                      sizing: Union[int, ChunkSizing]) -> tuple[dict, list[dict]]:
    """A plan from contig ``(name, length)`` pairs alone, every base counted as A/C/G/T
    (N gaps are unknown without the sequence, so SegmentNT window counts are upper
    bounds). For cost estimates: its chunks are marked ``layout_only`` and
    ``genoseg predict`` refuses them."""
    records = [(str(n), int(L)) for n, L in records]
    used = [(n, L) for n, L in records if L > 0]
    lay = layout_genome([n for n, _ in used], [L for _, L in used],
                        [(np.array([0], np.int64), np.array([L], np.int64)) for _, L in used], g)
    skipped = [{"name": n, "length": L, "reason": "empty sequence"} for n, L in records if L <= 0]
    return build_plan(lay, g, ChunkSizing.of(sizing), lengths_source(records),
                      {"contigs": None, "contig_regex": None, "min_contig_length": 1}, skipped,
                      layout_only=True)


def _contig_table(lay: GenomeLayout, g: Geometry) -> list[dict]:
    """Per-contig rows of ``plan.json`` (vectorised; one dict per contig)."""
    nc = len(lay.names)
    n_windows = np.diff(lay.offsets)
    covered = lay.covered_bases(g)
    levels = list(g.window_lengths)
    code = np.searchsorted(-np.array(levels), -lay.lengths)  # index of each window's length
    by_len = np.bincount(lay.contig_of_windows() * len(levels) + code,
                         minlength=nc * len(levels)).reshape(nc, len(levels))
    short_n = np.bincount(lay.skipped_contig, minlength=nc)
    short_bp = np.bincount(lay.skipped_contig, weights=lay.skipped_ends - lay.skipped_starts,
                           minlength=nc).astype(np.int64)
    asc = sorted(range(len(levels)), key=lambda i: levels[i])
    names = [str(levels[i]) for i in asc]
    return [{"name": name, "length": length, "n_windows": nw,
             "window_lengths": {n: k for n, k in zip(names, counts) if k},
             "predicted_bases": cov, "unpredicted_bases": length - cov,
             "short_runs_skipped": sn, "short_run_bases_skipped": sbp, "all_n_windows_skipped": an}
            for name, length, nw, counts, cov, sn, sbp, an in zip(
                lay.names, lay.contig_lengths.tolist(), n_windows.tolist(), by_len[:, asc].tolist(),
                covered.tolist(), short_n.tolist(), short_bp.tolist(), lay.all_n_windows.tolist())]


def build_plan(lay: GenomeLayout, g: Geometry, sizing: ChunkSizing, source: dict,
               selection: dict, skipped: list[dict], max_listed_skips: int = 1000,
               layout_only: bool = False) -> tuple[dict, list[dict]]:
    """Plan and chunk dicts from a laid-out genome (see :func:`make_plan`)."""
    from . import __version__

    skipped = list(skipped)
    listed = slice(0, max(0, max_listed_skips))
    reason = f"A/C/G/T run shorter than the minimum window {g.min_window_length}"
    skipped_regions = [{"contig": lay.names[c], "start": a, "end": b, "reason": reason}
                       for c, a, b in zip(lay.skipped_contig[listed].tolist(), lay.skipped_starts[listed].tolist(),
                                          lay.skipped_ends[listed].tolist())]
    n_windows = np.diff(lay.offsets)
    for c in np.flatnonzero(n_windows == 0).tolist():
        skipped.append({"name": lay.names[c], "length": int(lay.contig_lengths[c]),
                        "reason": "no window fits (no A/C/G/T run as long as the minimum window)"
                        if not g.allows_n else "sequence is all N"})
    chunks = make_chunks(lay, g, sizing)
    work = [ch["work_seconds"] for ch in chunks]
    plan = {
        "format": PLAN_FORMAT,
        "genoseg_version": __version__,
        "fasta": source,
        "genome": source.get("name"),
        **g.to_json(),
        "windows_per_chunk": sizing.windows_per_chunk,
        "chunking": {**sizing.to_json(g), "estimated_seconds_total": round(sum(work), 1),
                     "estimated_seconds_per_chunk": {"min": round(min(work, default=0), 1),
                                                     "median": round(float(np.median(work)) if work else 0.0, 1),
                                                     "max": round(max(work, default=0), 1)}},
        "n_chunks": len(chunks),
        "n_windows": lay.n_windows,
        "contigs": _contig_table(lay, g),
        "skipped_contigs": skipped,
        "skipped_regions": skipped_regions,
        "n_skipped_regions": int(lay.skipped_starts.size),
        # everything left out, in one list (contigs and regions) for reports
        "skipped": [{"contig": c["name"], "length": c["length"], "reason": c["reason"]} for c in skipped]
                   + skipped_regions,
        "selection": selection,
    }
    if layout_only:
        plan["layout_only"] = True
    pid = plan_id(plan, layout_digest(lay, chunks))
    plan["plan_id"] = pid
    geometry = g.to_json()
    for ch in chunks:
        ch.update({"format": CHUNK_FORMAT, "plan_id": pid, "n_chunks": len(chunks),
                   "genome": plan["genome"], "geometry": geometry})
        if layout_only:
            ch["layout_only"] = True
    return plan, chunks


def check_plan_absent(outdir: str, overwrite: bool) -> None:
    from .outputs import check_absent

    check_absent(os.path.join(outdir, "plan.json"), overwrite)
    check_absent(os.path.join(outdir, "chunks"), overwrite)


def write_plan(outdir: str, plan: dict, chunks: list[dict], overwrite: bool = False,
               sequences_from=None) -> None:
    """Write ``outdir/chunks/`` then ``outdir/plan.json``, each atomically; with
    ``sequences_from`` (an open :class:`genoseg.fasta.Fasta`) also each chunk's sequence beside its JSON
    (:func:`genoseg.staging.stage_chunk`)."""
    from .outputs import atomic_path

    check_plan_absent(outdir, overwrite)
    os.makedirs(outdir, exist_ok=True)
    with atomic_path(os.path.join(outdir, "chunks"), overwrite=overwrite, is_dir=True) as tmp:
        if sequences_from is not None:
            from .staging import stage_chunks

            stage_chunks(sequences_from, chunks, tmp)
        for ch in chunks:
            with open(os.path.join(tmp, chunk_filename(ch["chunk"])), "w") as fh:
                fh.write(json.dumps(ch, separators=(",", ":")))  # dumps: C encoder, unlike dump
        with atomic_path(os.path.join(outdir, "plan.json"), overwrite=overwrite) as ptmp:
            with open(ptmp, "w") as fh:
                # indented for people unless it is large (10^5 scaffolds: compact, C encoder)
                small = len(plan["contigs"]) <= 1000
                fh.write(json.dumps(plan, indent=1) if small else json.dumps(plan, separators=(",", ":")))
    log.info("plan: %d contigs, %d windows, %d chunks (about %.0f s of model time each, estimated) -> %s",
             len(plan["contigs"]), plan["n_windows"], len(chunks),
             plan["chunking"]["estimated_seconds_per_chunk"]["median"], outdir)


def chunk_filename(i: int) -> str:
    return f"chunk_{i:05d}.json"


def read_json(path: str, what: str, fmt: str) -> dict:
    """A plan or chunk file (``what``: ``"plan"`` or ``"chunk"``), checked to be of format ``fmt``."""
    d = jsonfile.read_json(path, what)
    if not isinstance(d, dict) or d.get("format") != fmt:
        raise GenosegError(f"{path}: not a {what} file (expected format {fmt!r})")
    return d


def _require(d: dict, keys: Iterable[str], path: str, what: str) -> None:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            raise GenosegError(f"{path}: {what} has no {k!r} entry: the file is damaged or was not written "
                               "by this version of `genoseg plan`; make the plan again")


def read_plan(path: str) -> dict:
    """``plan.json``, with the entries later steps use checked (clear error naming the
    file and the entry instead of a ``KeyError``)."""
    d = read_json(path, "plan", PLAN_FORMAT)
    _require(d, ("plan_id", "n_chunks", "contigs") + GEOMETRY_KEYS, path, "plan")
    for c in d["contigs"]:
        _require(c, ("name", "length"), path, "a contig of the plan")
    return d


def read_chunk(path: str, layout_only_ok: bool = False) -> dict:
    """A chunk file, checked like :func:`read_plan`. Chunks of plans made from contig
    lengths alone (:func:`plan_from_lengths`) are refused unless ``layout_only_ok``."""
    d = read_json(path, "chunk", CHUNK_FORMAT)
    _require(d, ("plan_id", "chunk", "parts", "geometry"), path, "chunk")
    _require(d["geometry"], GEOMETRY_KEYS, path, "the chunk's geometry")
    for p in d["parts"]:
        _require(p, ("contig", "contig_length", "owned", "compute"), path, "a part of the chunk")
    if d.get("layout_only") and not layout_only_ok:
        raise GenosegError(f"{path}: this chunk comes from a plan made from contig lengths only (a cost "
                           "estimate); plan the FASTA with `genoseg plan --fasta` to predict")
    return d
