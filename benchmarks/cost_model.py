"""Cost model of the scatter: predict tasks per backbone and how busy they keep a GPU.

Reads real plans (``plan.json`` and its ``chunks/``) and prints, per plan, the number
of predict tasks, windows per task, model seconds per task and the GPU-busy fraction

    busy = sum(model time of each task) / sum(model time + fixed cost of each task)

for given per-window GPU times. A task's model time is its chunk's estimated work
(``work_seconds``: every window it computes, halo included, scaled by window length)
rescaled to the given SegmentNT time per 30 kb window; the other backbones are scaled
by their float32 times relative to SegmentNT (``genoseg.windows.WORK_TABLE``, measured
on an H200; in bfloat16 SegmentNT gains 5.2x, the others 1.6-1.8x, so the bfloat16
column understates their model time and their GPU-busy fraction). The fixed cost
per task is what a task pays besides the model: interpreter + JAX + device start,
weight load, trace and compile (warm persistent cache) of each window shape, reading
its staged sequence and writing its Parquet file; the first task on each GPU compiles
cold. The defaults (:class:`FixedCost`) are `benchmarks/bench_task_overhead.py`'s figures
on one H200 node (``--overhead-json`` reads that script's JSON from your nodes;
``--fixed-seconds`` sets the total).

Without ``--plan``, it makes the plans itself for hg38 (chr1-22, X, Y, M: the public
GRCh38 chromosome lengths) with `genoseg plan`'s defaults, one per backbone, written
under ``--outdir`` and read back like any plan. N gaps are not known without the
sequence: every base counts as A/C/G/T, so SegmentNT window counts are upper bounds
(hg38's primary chromosomes are ~5 % N: a plan of the real FASTA has ~5 % fewer
windows); Enformer/Borzoi windows cross N and lose only all-N windows (~1-2 %).

Usage::

    PYTHONPATH=src python benchmarks/cost_model.py [--seconds-per-window 0.092,0.0177] [--json]
    PYTHONPATH=src python benchmarks/cost_model.py --plan PLAN/plan.json [--plan ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os
import statistics
import sys
import tempfile
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "src"))

from genoseg import windows  # noqa: E402

#: GRCh38 / hg38 primary chromosome lengths (UCSC hg38.chrom.sizes, NCBI GRCh38).
HG38 = [
    ("chr1", 248_956_422), ("chr2", 242_193_529), ("chr3", 198_295_559), ("chr4", 190_214_555),
    ("chr5", 181_538_259), ("chr6", 170_805_979), ("chr7", 159_345_973), ("chr8", 145_138_636),
    ("chr9", 138_394_717), ("chr10", 133_797_422), ("chr11", 135_086_622), ("chr12", 133_275_309),
    ("chr13", 114_364_328), ("chr14", 107_043_718), ("chr15", 101_991_189), ("chr16", 90_338_345),
    ("chr17", 83_257_441), ("chr18", 80_373_285), ("chr19", 58_617_616), ("chr20", 64_444_167),
    ("chr21", 46_709_983), ("chr22", 50_818_468), ("chrX", 156_040_895), ("chrY", 57_227_415),
    ("chrM", 16_569),
]
BACKBONES = ("segment_nt", "segment_enformer", "segment_borzoi")
REFERENCE = "segment_nt"  # the per-window times given are SegmentNT's at its 30 kb window


@dataclasses.dataclass(frozen=True)
class FixedCost:
    """Seconds a predict task spends besides the model, per task on one GPU.

    Defaults: measured on one H200 node (16 cores) at the published SegmentNT size,
    bfloat16, batch 8 (``bench_task_overhead.py startup``; README, "Task overhead"):
    start 2.1 s, converted weights to the GPU 1.45 s, trace + lower 0.46 s and
    warm-cache compile 0.23 s per window shape, cold compile 4.8 s; plus an ESTIMATE of
    1 s for the staged chunk sequence in and the last Parquet row groups out (shared
    storage is not measured). Tracing and compiling are per window shape: a SegmentNT
    chunk holds up to five window lengths, Enformer/Borzoi one. The first task on each
    GPU compiles with an empty persistent cache (cold instead of warm). One whole task
    measured end to end (``bench_task_overhead.py task``, one window shape): 4.5 s
    besides its windows with a warm cache, 8.4 s with an empty one."""

    start_s: float = 2.1
    load_s: float = 1.45
    io_s: float = 1.0
    trace_per_shape_s: float = 0.46
    compile_per_shape_s: float = 0.23
    cold_compile_per_shape_s: float = 4.8

    def per_task_s(self, shapes: int) -> float:
        return self.start_s + self.load_s + self.io_s + (self.trace_per_shape_s + self.compile_per_shape_s) * shapes

    @classmethod
    def from_json(cls, path: str) -> "FixedCost":
        """Fields named as above, or the JSON of ``bench_task_overhead.py startup --json``
        (medians of ``start``, ``load_safetensors``, ``trace_lower``, ``compile_warm``,
        ``compile_cold``; ``io_s`` keeps its default)."""
        with open(path) as fh:
            d = json.load(fh)
        if "steps" in d:
            steps = {k: v["median_s"] for k, v in d["steps"].items()}
            names = {"start": "start_s", "load_safetensors": "load_s", "trace_lower": "trace_per_shape_s",
                     "compile_warm": "compile_per_shape_s", "compile_cold": "cold_compile_per_shape_s"}
            return cls(**{f: float(steps[k]) for k, f in names.items() if k in steps})
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: float(v) for k, v in d.items() if k in fields})


def load_plan(path: str) -> tuple[dict, list[dict]]:
    """A plan and its chunk files (``chunks/chunk_*.json`` beside it)."""
    plan = windows.read_plan(path)
    files = sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(path)), "chunks", "chunk_*.json")))
    chunks = [windows.read_chunk(f, layout_only_ok=True) for f in files]
    if len(chunks) != plan["n_chunks"]:
        raise SystemExit(f"{path}: {len(chunks)} chunk files beside it, the plan has {plan['n_chunks']}")
    return plan, chunks


def hg38_plan(backbone: str, outdir: str, sizing: windows.ChunkSizing) -> str:
    """Write the hg38 layout plan of ``backbone`` under ``outdir``; returns plan.json."""
    g = windows.geometry_for(backbone)
    plan, chunks = windows.plan_from_lengths(HG38, g, sizing)
    d = os.path.join(outdir, f"hg38_{backbone}")
    windows.write_plan(d, plan, chunks, overwrite=True)
    return os.path.join(d, "plan.json")


def task_model_seconds(plan: dict, chunks: list[dict], reference_s: float) -> list[float]:
    """Model seconds of each task when SegmentNT takes ``reference_s`` per 30 kb window
    (the plan's estimates rescaled; other backbones keep their FLOP ratio)."""
    scale = reference_s / windows.WORK_TABLE[REFERENCE][0]
    g = windows.Geometry.from_json(plan)
    est = plan.get("chunking", {}).get("seconds_per_window")
    if est is not None:  # a plan sized with --seconds-per-window: back to the table's estimate
        scale *= float(windows.window_seconds(g, [g.window_length])[0]) / est
    return [ch["work_seconds"] * scale for ch in chunks]


def task_shapes(plan: dict, chunks: list[dict]) -> list[int]:
    """Distinct window lengths (traced and compiled shapes) each task computes. A plan
    made from lengths alone does not know the N gaps that make SegmentNT use shorter
    windows: every allowed length is counted (an upper bound)."""
    if plan.get("layout_only"):
        return [len(plan["window_lengths"])] * len(chunks)
    return [len({n for p in ch["parts"] for _, n in p["compute"]}) for ch in chunks]


def busy_fraction(model_s: list[float], shapes: list[int], fixed: FixedCost, gpus: int) -> float:
    """GPU-busy share of the GPU time the tasks hold (each task holds one GPU from
    start to end; the first task on each of ``gpus`` GPUs also compiles cold: 0 for a
    warm persistent cache)."""
    held = sum(model_s) + sum(fixed.per_task_s(k) for k in shapes)
    held += sum((fixed.cold_compile_per_shape_s - fixed.compile_per_shape_s) * k for k in shapes[:gpus])
    return sum(model_s) / held if held else 0.0


def summarize(plan: dict, chunks: list[dict], times: list[float], fixed: FixedCost, gpus: int) -> dict:
    per_task = [ch["n_windows"] for ch in chunks]
    row = {"backbone": plan["backbone"], "window_length": plan["window_length"],
           "windows": plan["n_windows"], "tasks": plan["n_chunks"],
           "windows_per_task_median": int(statistics.median(per_task)) if per_task else 0,
           "compute_windows": sum(len(p["compute"]) for ch in chunks for p in ch["parts"]),
           "layout_only": bool(plan.get("layout_only"))}
    shapes = task_shapes(plan, chunks)
    row["shapes_per_task_max"] = max(shapes, default=0)
    for t in times:
        m = task_model_seconds(plan, chunks, t)
        row[f"model_s_per_task@{t:g}"] = round(statistics.median(m), 1) if m else 0.0
        row[f"gpu_hours@{t:g}"] = round(sum(m) / 3600, 2)
        row[f"busy_warm@{t:g}"] = round(busy_fraction(m, shapes, fixed, 0), 4)
        row[f"busy_with_cold_compiles@{t:g}"] = round(busy_fraction(m, shapes, fixed, gpus), 4)
    return row


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plan", action="append", default=None, help="a plan.json (repeatable); default: hg38 per backbone")
    ap.add_argument("--outdir", default=None, help="where the hg38 plans are written (default: a temporary directory)")
    ap.add_argument("--seconds-per-window", default="0.092,0.0177",
                    help="SegmentNT GPU seconds per 30 kb window, comma-separated (default: measured on an H200, "
                         "0.092 float32, 0.0177 bfloat16)")
    ap.add_argument("--chunk-seconds", type=float, default=windows.DEFAULT_CHUNK_SECONDS,
                    help="chunk size of the hg38 plans (default: genoseg plan's)")
    ap.add_argument("--gpus", type=int, default=16, help="GPUs, each paying one cold compile (default 16)")
    ap.add_argument("--overhead-json", default=None, help="measured fixed costs (FixedCost field names)")
    ap.add_argument("--fixed-seconds", type=float, default=None,
                    help="fixed cost per task, total (replaces start, load, io, trace and warm compile)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    fixed = FixedCost.from_json(args.overhead_json) if args.overhead_json else FixedCost()
    if args.fixed_seconds is not None:
        fixed = dataclasses.replace(fixed, start_s=args.fixed_seconds, load_s=0, io_s=0, trace_per_shape_s=0,
                                    compile_per_shape_s=0)
    times = [float(x) for x in args.seconds_per_window.split(",") if x]
    with tempfile.TemporaryDirectory() as tmp:
        paths = args.plan or [hg38_plan(b, args.outdir or tmp, windows.ChunkSizing(chunk_seconds=args.chunk_seconds))
                              for b in BACKBONES]
        rows = [summarize(*load_plan(p), times, fixed, args.gpus) for p in paths]
    out = {"fixed_cost": dataclasses.asdict(fixed), "gpus": args.gpus,
           "segment_nt_seconds_per_window": times, "plans": rows}
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    per_shape = fixed.trace_per_shape_s + fixed.compile_per_shape_s
    print(f"fixed cost per task {fixed.per_task_s(0):g} s + {per_shape:g} s per window shape (trace, warm-cache "
          f"compile; cold: +{fixed.cold_compile_per_shape_s - fixed.compile_per_shape_s:g} s per shape on the first "
          f"task of each of {args.gpus} GPUs); SegmentNT s/window: {', '.join(map(str, times))}")
    for r in rows:
        print(f"\n{r['backbone']} ({r['window_length']:,} bp windows{', layout from lengths' if r['layout_only'] else ''}): "
              f"{r['windows']:,} windows, {r['tasks']} tasks, median {r['windows_per_task_median']:,} windows/task, "
              f"up to {r['shapes_per_task_max']} window shapes/task")
        for t in times:
            print(f"  at {t:g} s/window (SegmentNT): {r[f'model_s_per_task@{t:g}']:.0f} s model/task, "
                  f"{r[f'gpu_hours@{t:g}']:.2f} GPU-h, GPU busy {100 * r[f'busy_warm@{t:g}']:.1f} % with a warm "
                  f"compilation cache, {100 * r[f'busy_with_cold_compiles@{t:g}']:.1f} % counting a cold compile "
                  f"on each GPU's first task")
    return 0


if __name__ == "__main__":
    sys.exit(main())
