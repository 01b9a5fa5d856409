#!/usr/bin/env python
"""GPU figures at the published model sizes (random weights, published shapes).

One run measures, for each backbone at its published size and default window
(SegmentNT 500M at 30 kb, SegmentEnformer at 196,608 bp, SegmentBorzoi at 524,288 bp):

- device throughput: windows/s and bases/s of ``predict_tokens`` (tokens already on
  the host, result read back) for float32 / bfloat16, the two SegmentNT attention paths
  (``einsum`` and the fused ``dot_product``, cuDNN for bfloat16) and several batch sizes;
  compile time of each shape (trace + XLA compile, first call);
- accuracy of each fast path: the largest absolute difference of the probabilities
  from the float32 einsum run on the same windows (the reference);
- the engine: ``predict_chunk`` over a synthetic genome of long contigs with the
  published SegmentNT (bfloat16), i.e. host reading, tokenising, merging and writing
  overlapped with the device, against the device-only rate of the same shape.

Rows are written to ``--json`` as they come, so a run cut off by a time limit keeps
what it measured; ``--budget-s`` skips the remaining rows once spent. ``--quick`` uses
tiny shapes (a CPU smoke run of the script itself). Usage::

    python benchmarks/bench_gpu.py --json out.json [--budget-s 420] [--sections nt,enformer,borzoi,engine]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import tempfile
import time
import traceback

import jax
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_predict import nt_config, random_windows  # noqa: E402

from genoseg.models import segment_borzoi, segment_enformer, segment_nt  # noqa: E402


class Runner:
    """Times rows, keeps the reference outputs and writes the JSON after every row."""

    def __init__(self, json_path, budget_s: float, repeats: int):
        self.rows, self.json_path, self.repeats = [], json_path, repeats
        self.deadline = time.perf_counter() + budget_s
        self.reference: dict = {}

    def over_budget(self) -> bool:
        return time.perf_counter() > self.deadline

    def add(self, row: dict) -> None:
        self.rows.append(row)
        if self.json_path:
            pathlib.Path(self.json_path).write_text(json.dumps(self.rows, indent=1))
        if "error" in row:
            print(f"{row['model']:18s} {row['dtype']:9s} {row['attention']:11s} b{row['batch']:<3d} "
                  f"error: {row['error']}", flush=True)
            return
        print(f"{row['model']:18s} {row['dtype']:9s} {row['attention']:11s} b{row['batch']:<3d} "
              f"compile {row['compile_s']:7.1f} s  {row['median_s'] * 1e3:9.1f} ms/call  "
              f"{row['windows_per_s']:8.2f} win/s  {row['bases_per_s'] / 1e6:8.2f} Mb/s  "
              f"max|dp| {row.get('max_abs_diff', float('nan')):.1e}", flush=True)

    def time_model(self, name: str, model, dtype: str, attention: str, length: int, batch: int) -> None:
        if self.over_budget():
            print(f"{name} {dtype} {attention} b{batch}: skipped (budget spent)", flush=True)
            return
        row = {"model": name, "dtype": dtype, "attention": attention, "window": length, "batch": batch}
        seqs = random_windows(np.random.default_rng(length), batch, length)
        tokens = model.tokenize(seqs)
        try:
            t0 = time.perf_counter()
            out = np.asarray(model.predict_tokens(tokens))
            row["compile_s"] = time.perf_counter() - t0
            times = []
            for _ in range(self.repeats):
                t0 = time.perf_counter()
                np.asarray(model.predict_tokens(tokens))  # includes the read-back, as the engine does
                times.append(time.perf_counter() - t0)
        except Exception as exc:  # a path the card or library refuses is a result too
            row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            self.add(row)
            return
        med = statistics.median(times)
        row.update(median_s=med, runs_s=times, windows_per_s=batch / med, bases_per_s=batch * length / med)
        ref = self.reference.get((name, length))
        if ref is None and dtype == "float32" and attention in ("einsum", "-"):
            self.reference[(name, length)] = out[0]
        elif ref is not None:
            row["max_abs_diff"] = float(np.abs(out[0] - ref).max())
        stats = jax.devices()[0].memory_stats() or {}
        row["peak_device_gb"] = stats.get("peak_bytes_in_use", 0) / 1e9
        self.add(row)


def nt_section(run: Runner, quick: bool, batches: list[int]) -> None:
    cfg = nt_config("tiny" if quick else "published")
    t0 = time.perf_counter()
    tree = segment_nt.random_params(cfg)
    print(f"segment_nt: {sum(a.size for m in tree.values() for a in m.values()) / 1e6:.0f}M parameters "
          f"(random, {time.perf_counter() - t0:.1f} s)", flush=True)
    length = 1536 if quick else segment_nt.TRAINING_WINDOW
    b0 = batches[len(batches) // 2]
    plan = [("float32", "einsum", [b0]), ("bfloat16", "dot_product", batches), ("bfloat16", "einsum", [b0]),
            ("float32", "dot_product", [b0])]
    for dtype, attention, bs in plan:
        model = segment_nt.build_model(cfg, tree, compute_dtype=dtype, attention=attention)
        for b in bs:
            run.time_model("segment_nt_500M", model, dtype, attention, length, b)
        del model


def trunk_section(run: Runner, module, name: str, quick: bool, batches: list[int]) -> None:
    """Published size with random weights; ``quick``: the tiny golden checkpoint."""
    from bench_predict import GOLDEN

    from genoseg.models import load_model

    if not quick:
        cfg = module.EnformerConfig() if module is segment_enformer else module.BorzoiConfig()
        params, state = module.random_params(cfg)
    for dtype, bs in (("float32", batches[:1]), ("bfloat16", batches)):
        if quick:
            model = load_model(GOLDEN / f"{name}_tiny", compute_dtype=dtype)
        else:
            model = module.build_model(cfg, params, state, compute_dtype=dtype)
        for b in bs:
            run.time_model(name, model, dtype, "-", model.window_length, b)
        del model


def engine_section(run: Runner, quick: bool, batch: int, megabases: float) -> None:
    """predict_chunk over long random contigs vs the device-only rate of the same shape."""
    from genoseg import windows
    from genoseg.fasta import Fasta
    from genoseg.predict import predict_chunk

    if run.over_budget():
        print("engine: skipped (budget spent)")
        return
    cfg = nt_config("tiny" if quick else "published")
    model = segment_nt.build_model(cfg, segment_nt.random_params(cfg), compute_dtype="bfloat16")
    length = 1536 if quick else segment_nt.TRAINING_WINDOW
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        fasta = pathlib.Path(tmp) / "g.fa"
        per = int(megabases * 1e6 / 4)
        with open(fasta, "w") as fh:
            for c in range(4):
                seq = np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, per)].tobytes()
                fh.write(f">chr{c}\n")
                fh.write("\n".join(seq[i:i + 80].decode() for i in range(0, per, 80)) + "\n")
        g = windows.geometry_from_model(model, length)
        _, chunks = windows.make_plan(str(fasta), g, None, 10**6)
        with Fasta(str(fasta)) as fa:
            for rep in range(2):  # the first pays the compiles
                t0 = time.perf_counter()
                stats = [predict_chunk(model, fa, ch, str(pathlib.Path(tmp) / f"c{ch['chunk']}.parquet"),
                                       batch_size=batch, overwrite=True) for ch in chunks]
                wall = time.perf_counter() - t0
        computed = sum(s["computed_windows"] for s in stats)
        row = {"model": "engine segment_nt_500M", "dtype": "bfloat16", "attention": "auto", "window": length,
               "batch": batch, "bases": 4 * per, "wall_s": wall, "windows_computed": computed,
               "windows_per_s": computed / wall, "bases_per_s": 4 * per / wall,
               "device_idle_fraction": statistics.mean(s["device_idle_fraction"] for s in stats),
               "padded_fraction": statistics.mean(s["padded_fraction"] for s in stats),
               "per_batch_ms": stats[0]["per_batch_ms"]}
    run.rows.append(row)
    if run.json_path:
        pathlib.Path(run.json_path).write_text(json.dumps(run.rows, indent=1))
    print(f"engine (predict_chunk, bf16, batch {batch}): {4 * per / 1e6:.1f} Mb in {wall:.1f} s, "
          f"{row['windows_per_s']:.2f} windows/s computed, {row['bases_per_s'] / 1e6:.2f} Mb/s of genome, "
          f"device idle {row['device_idle_fraction']:.1%}, per batch ms {row['per_batch_ms']}", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json")
    ap.add_argument("--budget-s", type=float, default=420.0, help="skip remaining rows after this many seconds")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="tiny shapes (CPU smoke run of this script)")
    ap.add_argument("--sections", default="nt,enformer,borzoi,engine")
    ap.add_argument("--nt-batches", default="1,8,32")
    ap.add_argument("--engine-mb", type=float, default=6.0, help="genome size of the engine run (Mb)")
    args = ap.parse_args(argv)
    dev = jax.devices()[0]
    print(f"backend {jax.default_backend()} ({dev.device_kind}), jax {jax.__version__}; "
          f"median of {args.repeats} calls", flush=True)
    run = Runner(args.json, args.budget_s, args.repeats)
    # A later model object with the same computation (the engine's) loads the executable
    # instead of compiling it again; the first compile of each shape is still cold.
    from genoseg.device import enable_compilation_cache
    enable_compilation_cache(tempfile.mkdtemp(prefix="genoseg-bench-xla-"))
    sections = args.sections.split(",")
    nt_batches = [int(b) for b in args.nt_batches.split(",")]
    steps = {"nt": lambda: nt_section(run, args.quick, nt_batches),
             "engine": lambda: engine_section(run, args.quick, nt_batches[len(nt_batches) // 2], args.engine_mb),
             "enformer": lambda: trunk_section(run, segment_enformer, "segment_enformer", args.quick, [1, 4]),
             "borzoi": lambda: trunk_section(run, segment_borzoi, "segment_borzoi", args.quick, [1, 2])}
    failed = 0
    for name in sections:
        try:
            steps[name]()
        except Exception:  # keep the other sections' figures
            failed += 1
            traceback.print_exc()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
