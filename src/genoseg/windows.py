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

``step = round(P * (1 - overlap))`` with ``overlap`` 0.5 by default.

Chunking: the windows of all contigs, in contig order then start order, are cut into
chunks of ``windows_per_chunk``. A chunk *owns* the bases from the output start of its
first window in a contig (0 if that is the contig's first window) to the output start of
the next chunk's first window (the contig end if none), and computes every window whose
output span meets its owned bases — including windows listed in neighbouring chunks —
so the merged value of a base does not depend on the chunking.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
from typing import Optional

import numpy as np

from . import jsonfile
from .errors import GenosegError

log = logging.getLogger(__name__)

PLAN_FORMAT = "genoseg-plan/1"
CHUNK_FORMAT = "genoseg-chunk/1"
DEFAULT_OVERLAP = 0.5
NT_LEVELS = (1, 2, 4, 8, 16)  # SegmentNT window lengths: L / level, rounded to the multiple

#: Per-backbone defaults for planning without weights: default input length, input
#: length multiple, whether N is accepted, and the output length (None = whole input).
BACKBONE_TABLE = {
    "segment_nt": dict(window_length=30_000, length_multiple=24, allows_n=False, output_length=None),
    "segment_nt_multi_species": dict(window_length=30_000, length_multiple=24, allows_n=False, output_length=None),
    "segment_enformer": dict(window_length=196_608, length_multiple=128, allows_n=True, output_length=None),
    "segment_borzoi": dict(window_length=524_288, length_multiple=128, allows_n=True, output_length=196_608),
}


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
    L = int(window_length or model.window_length)
    table = BACKBONE_TABLE.get(backbone, {})
    multiple = int(getattr(model, "length_multiple", table.get("length_multiple", 1)))
    allows_n = bool(getattr(model, "allows_n", table.get("allows_n", not backbone.startswith("segment_nt"))))
    lengths = _lengths_for(not allows_n, L, multiple)
    spans = {n: tuple(int(x) for x in model.output_span(n)) for n in lengths}
    return _checked(Geometry(backbone, L, multiple, allows_n, lengths, spans, float(overlap)))


def geometry_for(backbone: Optional[str], model_dir: Optional[str] = None,
                 window_length: Optional[int] = None, overlap: float = DEFAULT_OVERLAP) -> Geometry:
    """Geometry from the per-backbone table, refined by the model directory's small
    config files (``config.json``, ``jax_model/hyperparams.json``) — never its weights."""
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
    L = int(window_length or cfg.get("window_length") or t["window_length"])
    m = int(t["length_multiple"])
    lengths = _lengths_for(not t["allows_n"], L, m)
    spans = {}
    for n in lengths:
        P = t["output_length"] or n
        if P > n or (n - P) % 2:
            raise GenosegError(f"{backbone}: window length {n} cannot hold an output of {P} bases")
        spans[n] = ((n - P) // 2, (n - P) // 2 + P)
    return _checked(Geometry(backbone, L, m, bool(t["allows_n"]), lengths, spans, float(overlap)))


def _checked(g: Geometry) -> Geometry:
    if not 0.0 <= g.overlap < 1.0:
        raise GenosegError(f"overlap must be in [0, 1), got {g.overlap}")
    for n, (s, e) in g.spans.items():
        if not 0 <= s < e <= n:
            raise GenosegError(f"{g.backbone}: bad output span {(s, e)} for length {n}")
    return g


# --------------------------------------------------------------------------- layout
@dataclasses.dataclass
class ContigLayout:
    """Windows of one contig (sorted by start; output starts and ends non-decreasing)."""

    name: str
    length: int
    starts: np.ndarray   # int64 input starts
    lengths: np.ndarray  # int64 input lengths
    skipped_runs: tuple[np.ndarray, np.ndarray]  # SegmentNT runs too short (starts, ends)
    skipped_windows: int  # N-allowed backbones: all-N windows left out

    def output_bounds(self, g: Geometry) -> tuple[np.ndarray, np.ndarray]:
        s = np.zeros_like(self.starts)
        e = np.zeros_like(self.starts)
        for n in np.unique(self.lengths):
            sel = self.lengths == n
            a, b = g.span(int(n))
            s[sel] = self.starts[sel] + a
            e[sel] = self.starts[sel] + b
        return s, e

    def covered_bases(self, g: Geometry) -> int:
        """Bases of the contig inside at least one output span."""
        if not self.starts.size:
            return 0
        s, e = self.output_bounds(g)
        s, e = np.clip(s, 0, self.length), np.clip(e, 0, self.length)
        prev_end = np.concatenate([[0], np.maximum.accumulate(e)[:-1]])
        return int(np.maximum(0, e - np.maximum(s, prev_end)).sum())


def _tile(run_starts: np.ndarray, run_len: np.ndarray, win: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Starts of windows of length ``win[i]`` tiling ``[run_starts[i], +run_len[i])``
    every ``step[i]``, the last aligned to the end (vectorised over runs)."""
    span = run_len - win
    n_regular = span // step + 1
    extra = (span % step != 0).astype(np.int64)
    counts = n_regular + extra
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    k = np.arange(total, dtype=np.int64) - first
    rep_step = np.repeat(step, counts)
    out = np.repeat(run_starts, counts) + k * rep_step
    last = np.cumsum(counts) - 1
    out[last] = run_starts + span  # aligned to the end (== regular when extra is 0)
    return out


def layout_contig(name: str, length: int, runs: tuple[np.ndarray, np.ndarray], g: Geometry) -> ContigLayout:
    """Windows of one contig from its A/C/G/T runs (see module docstring)."""
    rs, re_ = runs
    if not g.allows_n:
        rl = re_ - rs
        levels = np.array(g.window_lengths[::-1])  # ascending
        idx = np.searchsorted(levels, rl, side="right") - 1
        ok = idx >= 0
        win = np.where(ok, levels[np.maximum(idx, 0)], 0)
        steps = np.array([g.step(int(w)) if w else 1 for w in win], dtype=np.int64) if win.size else np.zeros(0, np.int64)
        starts = _tile(rs[ok], rl[ok], win[ok], steps[ok])
        sp = rl[ok] - win[ok]
        lens = np.repeat(win[ok], sp // steps[ok] + 1 + (sp % steps[ok] != 0))
        return ContigLayout(name, length, starts.astype(np.int64), lens.astype(np.int64),
                            (rs[~ok], re_[~ok]), 0)
    L = g.window_length
    s, e = g.span(L)
    P = e - s
    step = g.step(L)
    if length <= P:
        ostarts = np.zeros(1, np.int64)
    else:
        ostarts = _tile(np.zeros(1, np.int64), np.array([length]), np.array([P]), np.array([step]))
    starts = ostarts - s
    # keep windows whose input holds at least one A/C/G/T base
    j = np.searchsorted(re_, starts, side="right")
    has = (j < rs.size) & (rs[np.minimum(j, max(rs.size - 1, 0))] < starts + L) if rs.size else np.zeros(starts.size, bool)
    return ContigLayout(name, length, starts[has], np.full(int(has.sum()), L, np.int64),
                        (np.zeros(0, np.int64), np.zeros(0, np.int64)), int((~has).sum()))


# -------------------------------------------------------------------------- chunking
def make_chunks(layouts: list[ContigLayout], g: Geometry, windows_per_chunk: int) -> list[dict]:
    """Cut the windows of all contigs into chunk descriptions (see module docstring).

    Each chunk: ``{"chunk", "n_windows", "parts": [{"contig", "contig_length",
    "owned": [a, b], "first_window", "n_windows", "compute": [[start, length], ...]}]}``
    where ``first_window``/``n_windows`` index the contig's windows this chunk lists
    and ``compute`` are all windows (in start order) whose output meets ``[a, b)``.
    """
    if windows_per_chunk < 1:
        raise GenosegError("--windows-per-chunk must be at least 1")
    # global list of (contig index, window index) cut every windows_per_chunk
    counts = [lay.starts.size for lay in layouts]
    total = sum(counts)
    chunks = []
    offsets = np.cumsum([0] + counts)
    bounds = [lay.output_bounds(g) for lay in layouts]
    for lay, (os_, oe) in zip(layouts, bounds):
        if np.any(np.diff(os_) < 0) or np.any(np.diff(oe) < 0):
            raise AssertionError(f"layout of {lay.name!r} is not monotone")
    for c0 in range(0, total, windows_per_chunk):
        c1 = min(total, c0 + windows_per_chunk)
        parts = []
        for ci, lay in enumerate(layouts):
            lo, hi = max(c0, offsets[ci]), min(c1, offsets[ci + 1])
            if lo >= hi:
                continue
            i0, i1 = int(lo - offsets[ci]), int(hi - offsets[ci])
            os_, oe = bounds[ci]
            a = 0 if i0 == 0 else int(max(0, os_[i0]))
            b = lay.length if i1 == counts[ci] else int(min(lay.length, os_[i1]))
            k0 = int(np.searchsorted(oe, a, side="right"))
            k1 = int(np.searchsorted(os_, b, side="left"))
            compute = np.stack([lay.starts[k0:k1], lay.lengths[k0:k1]], axis=1).tolist()
            parts.append({"contig": lay.name, "contig_length": lay.length, "owned": [a, b],
                          "first_window": i0, "n_windows": i1 - i0, "compute": compute})
        chunks.append({"chunk": len(chunks), "n_windows": c1 - c0, "parts": parts})
    return chunks


def plan_id(plan: dict) -> str:
    blob = json.dumps({k: v for k, v in plan.items() if k not in ("plan_id", "created")}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------ plan
def make_plan(fasta_path, g: Geometry, outdir: Optional[str], windows_per_chunk: int = 64,
              contigs: Optional[list[str]] = None, contig_regex: Optional[str] = None,
              min_contig_length: int = 1, overwrite: bool = False, model_dir: Optional[str] = None,
              max_listed_skips: int = 1000) -> tuple[dict, list[dict]]:
    """Validate the FASTA (a path or an open :class:`genoseg.fasta.Fasta`), lay out
    windows and cut chunks.

    Writes ``outdir/plan.json`` and ``outdir/chunks/chunk_NNNNN.json`` (atomically;
    refuses to replace them unless ``overwrite``) when ``outdir`` is given. Returns
    ``(plan, chunks)`` where each chunk dict is exactly what its file holds.
    """
    from . import __version__
    from .fasta import Fasta, scan_contig, select_contigs
    from .outputs import atomic_path, check_absent

    if outdir is not None:
        check_absent(os.path.join(outdir, "plan.json"), overwrite)
        check_absent(os.path.join(outdir, "chunks"), overwrite)
    # a path, or an open Fasta whose index the caller chose (--fai, read-only directories)
    with contextlib.nullcontext(fasta_path) if isinstance(fasta_path, Fasta) else Fasta(fasta_path) as fa:
        fasta_path = fa.path
        used, skipped = select_contigs(fa.contigs, contigs, contig_regex, min_contig_length, fa.path)
        if not used:
            raise GenosegError(f"{fa.path}: no contigs selected ({len(skipped)} left out; see --contigs, "
                               "--contig-regex, --min-contig-length)")
        layouts = []
        for c in used:
            runs = scan_contig(fa, c.name)
            layouts.append(layout_contig(c.name, c.length, runs, g))
            log.info("plan: %s (%d bp): %d windows", c.name, c.length, layouts[-1].starts.size)
    contig_info, skipped_regions = [], []
    n_skipped_regions = 0
    for lay in layouts:
        rs, re_ = lay.skipped_runs
        n_skipped_regions += rs.size
        for a, b in zip(rs[:max(0, max_listed_skips - len(skipped_regions))].tolist(),
                        re_[:max(0, max_listed_skips - len(skipped_regions))].tolist()):
            skipped_regions.append({"contig": lay.name, "start": a, "end": b,
                                    "reason": f"A/C/G/T run shorter than the minimum window {g.min_window_length}"})
        lens, cnt = np.unique(lay.lengths, return_counts=True)
        covered = lay.covered_bases(g)
        contig_info.append({
            "name": lay.name, "length": lay.length, "n_windows": int(lay.starts.size),
            "window_lengths": {str(int(k)): int(v) for k, v in zip(lens, cnt)},
            "predicted_bases": covered, "unpredicted_bases": lay.length - covered,
            "short_runs_skipped": int(rs.size), "short_run_bases_skipped": int((re_ - rs).sum()),
            "all_n_windows_skipped": lay.skipped_windows,
        })
        if not lay.starts.size:
            skipped.append({"name": lay.name, "length": lay.length,
                            "reason": "no window fits (no A/C/G/T run as long as the minimum window)"
                            if not g.allows_n else "sequence is all N"})
    chunks = make_chunks(layouts, g, windows_per_chunk)
    plan = {
        "format": PLAN_FORMAT,
        "genoseg_version": __version__,
        "fasta": os.path.abspath(fasta_path),
        "genome": os.path.basename(fasta_path),
        "model": os.path.abspath(model_dir) if model_dir else None,
        **g.to_json(),
        "windows_per_chunk": int(windows_per_chunk),
        "n_chunks": len(chunks),
        "n_windows": int(sum(lay.starts.size for lay in layouts)),
        "contigs": contig_info,
        "skipped_contigs": skipped,
        "skipped_regions": skipped_regions,
        "n_skipped_regions": int(n_skipped_regions),
        # everything left out, in one list (contigs and regions) for reports
        "skipped": [{"contig": c["name"], "length": c["length"], "reason": c["reason"]} for c in skipped]
                   + skipped_regions,
        "selection": {"contigs": contigs, "contig_regex": contig_regex, "min_contig_length": min_contig_length},
    }
    pid = plan_id({**plan, "chunks": chunks})
    plan["plan_id"] = pid
    for ch in chunks:
        ch.update({"format": CHUNK_FORMAT, "plan_id": pid, "n_chunks": len(chunks),
                   "genome": plan["genome"], "geometry": g.to_json()})
    if outdir is not None:
        os.makedirs(outdir, exist_ok=True)
        with atomic_path(os.path.join(outdir, "chunks"), overwrite=overwrite, is_dir=True) as tmp:
            for ch in chunks:
                with open(os.path.join(tmp, chunk_filename(ch["chunk"])), "w") as fh:
                    json.dump(ch, fh, separators=(",", ":"))
            with atomic_path(os.path.join(outdir, "plan.json"), overwrite=overwrite) as ptmp:
                with open(ptmp, "w") as fh:
                    json.dump(plan, fh, indent=1)
        log.info("plan: %d contigs, %d windows, %d chunks -> %s", len(layouts), plan["n_windows"],
                 len(chunks), outdir)
    return plan, chunks


def chunk_filename(i: int) -> str:
    return f"chunk_{i:05d}.json"


def read_json(path: str, what: str, fmt: str) -> dict:
    """A plan or chunk file, checked to be of format ``fmt``."""
    d = jsonfile.read_json(path, what)
    if not isinstance(d, dict) or d.get("format") != fmt:
        raise GenosegError(f"{path}: not a {what} (expected format {fmt!r})")
    return d
