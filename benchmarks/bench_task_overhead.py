#!/usr/bin/env python
"""Fixed cost of a ``genoseg predict`` task, at the published SegmentNT size.

Subcommands (more may be added beside them; each is one ``_<name>(args, work)`` function):

``startup``
    Writes a SegmentNT checkpoint in the published layout with random weights
    (29 layers, width 1024: ~500M parameters, ~2 GB joblib) into a temporary
    directory, converts it with ``genoseg convert-model``, then measures, each in a
    fresh child process and as the median of ``--repeats`` runs:

    - ``start``: interpreter + ``import jax`` + genoseg's model code + JAX backend start;
    - ``load joblib``: ``load_model`` of the published pickle (restricted unpickler),
      split into reading the tree into host memory and the whole call (reading,
      shape checks, placing on the device);
    - ``load safetensors``: the same for the converted copy, whole call including the
      SHA-256 verification; the verification and the copy of the tree to the device
      are also timed on their own;
    - ``trace + lower``: JAX tracing the forward pass for one window shape and lowering
      it to StableHLO (paid by every process; the persistent cache does not cover it);
    - ``compile cold``: XLA-compiling it with an empty persistent compilation cache
      (``--jax-cache-dir``), and ``compile warm``: the same in a new process once the
      cache holds the entry.

    Run on the CPU by default (``JAX_PLATFORMS`` decides); pass ``--window``/``--batch``
    for the shape (default 30,000 bp, batch 1: the published window).

``task``
    One whole ``genoseg predict`` task in a fresh process, as a pipeline runs it: a
    random FASTA of ``--megabases`` (two contigs) planned as one chunk, predicted with the
    converted published-size checkpoint, first with an empty and then with a warm
    persistent compilation cache. Reports the task's wall time, the chunk's own time
    (``predict_chunk``: compile, model, host work), the rest (start, imports, weights,
    plan reading: the per-task fixed cost) and the chunk's windows per second.

Usage::

    python benchmarks/bench_task_overhead.py task [--megabases 6] [--dtype bfloat16] [--workdir DIR]
    python benchmarks/bench_task_overhead.py startup [--repeats 3] [--window 30000] [--json out.json]

The checkpoint and caches live in ``--workdir`` (default: a temporary directory,
removed afterwards): ~4.5 GB of disk and ~8 GB of memory at the published size.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
GOLDEN = ROOT / "tests" / "data" / "golden"

#: hyperparams.json of the published InstaDeepAI/segment_nt (NT-v2 500M multi-species
#: trunk); the features come from the golden file in the same layout.
PUBLISHED_NT = dict(k_for_kmers=6, max_positions=2048, embed_scale=1.0, emb_layer_norm_before=False,
                    key_dim=64, attention_heads=16, embed_dim=1024, ffn_embed_dim=4096, num_layers=29,
                    positional_embedding=None, add_bias_kv=False, add_bias_ffn=False, use_glu_in_ffn=True,
                    ffn_activation_name="swish", use_rotary_embedding=True, token_dropout=False,
                    masking_ratio=0.0, masking_prob=0.0, rescaling_factor=5000 / 2048)


# ----------------------------------------------------------------- children
def child(code: str, env: dict | None = None, timeout: float = 3600) -> tuple[float, dict]:
    """Run ``code`` in a fresh interpreter; returns (wall seconds, the JSON it prints last)."""
    path = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH", "")) if p)
    full_env = {**os.environ, "PYTHONPATH": path, **(env or {})}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{code}\n{proc.stderr[-4000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    return wall, (json.loads(lines[-1]) if lines else {})


def median_of(runs: list[float]) -> dict:
    return {"median_s": round(statistics.median(runs), 3), "runs_s": [round(r, 3) for r in runs]}


MAKE_CHECKPOINT = """
import json, os, time, joblib, numpy as np
from genoseg.models.segment_nt import SegmentNTConfig, random_params
hp = json.loads({hp!r})
cfg = SegmentNTConfig.from_hyperparams(hp)
t0 = time.perf_counter()
tree = random_params(cfg, seed=0)
out = {out!r}
os.makedirs(os.path.join(out, "jax_model"), exist_ok=True)
with open(os.path.join(out, "jax_model", "hyperparams.json"), "w") as fh:
    json.dump(hp, fh, indent=1)
joblib.dump(tree, os.path.join(out, "jax_model", "pytree_ckpt.joblib"))
n = sum(a.size for m in tree.values() for a in m.values())
print(json.dumps({{"parameters": int(n), "seconds": time.perf_counter() - t0}}))
"""

START = """
import json, time
t0 = time.perf_counter()
import jax
import genoseg.models, genoseg.models.segment_nt
from genoseg.device import select_device
info = select_device("auto")
print(json.dumps({"in_process_s": time.perf_counter() - t0, "device": str(info)}))
"""

LOAD = """
import json, time, gc, jax
from genoseg.checkpoint import read_model_tree
from genoseg.convert import verify_converted
from genoseg.models import load_model
path = {path!r}
t0 = time.perf_counter(); verified = verify_converted(path) is not None; t1 = time.perf_counter()
tree = read_model_tree(path, "pytree_ckpt"); t2 = time.perf_counter()
jax.block_until_ready(jax.device_put(tree)); t2b = time.perf_counter()
del tree; gc.collect()
t3 = time.perf_counter()
model = load_model(path)
jax.block_until_ready(model._params)
t4 = time.perf_counter()
print(json.dumps({{"verify_s": t1 - t0 if verified else None, "read_tree_s": t2 - t1, "device_put_s": t2b - t2,
                  "load_model_s": t4 - t3,
                  "device": model.device}}))
"""

COMPILE = """
import json, time, jax, numpy as np
from genoseg.device import enable_compilation_cache
stats = enable_compilation_cache({cache!r})
from genoseg.models import load_model
model = load_model({path!r}, compute_dtype={dtype!r})
tokens = model.tokenize(["ACGT" * ({window} // 4)] * {batch})
t0 = time.perf_counter()
lowered = model._probs.lower(model._params, model._state, tokens)
t1 = time.perf_counter()
lowered.compile()
t2 = time.perf_counter()
print(json.dumps({{"lower_s": t1 - t0, "compile_s": t2 - t1, "hits": stats.hits, "misses": stats.misses,
                  "tokens": list(tokens.shape)}}))
"""


# ----------------------------------------------------------------- startup
def in_workdir(body):
    """The subcommand running ``body(args, work)`` in ``--workdir`` (kept) or a
    temporary directory (removed afterwards unless ``--keep``)."""
    def cmd(args) -> dict:
        work = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="genoseg_overhead_"))
        try:
            return body(args, work)
        finally:
            if not args.workdir and not args.keep:
                shutil.rmtree(work, ignore_errors=True)
    return cmd


def _checkpoints(args, work: pathlib.Path, result: dict) -> tuple[pathlib.Path, pathlib.Path]:
    """The random published-layout checkpoint and its converted copy in ``work``
    (made when missing; reused from an earlier run with the same ``--workdir``)."""
    hp = dict(PUBLISHED_NT, features=json.loads(
        (GOLDEN / "segment_nt_tiny/jax_model/hyperparams.json").read_text())["features"])
    if args.layers:
        hp["num_layers"] = args.layers
    published, converted = work / "segment_nt", work / "segment_nt_converted"
    if not (published / "jax_model/pytree_ckpt.joblib").is_file():
        print(f"writing a random {hp['num_layers']}-layer SegmentNT checkpoint to {published} ...", flush=True)
        _, made = child(MAKE_CHECKPOINT.format(hp=json.dumps(hp), out=str(published)))
        result["parameters"] = made["parameters"]
    if not converted.is_dir():
        wall, _ = child(f"from genoseg.cli import main; raise SystemExit(main(['-q', 'convert-model', "
                        f"'--model', {str(published)!r}, '--outdir', {str(converted)!r}]))")
        result["convert_s"] = round(wall, 2)
    result["joblib_bytes"] = (published / "jax_model/pytree_ckpt.joblib").stat().st_size
    result["safetensors_bytes"] = (converted / "jax_model/pytree_ckpt.safetensors").stat().st_size
    return published, converted


def _startup(args, work: pathlib.Path) -> dict:
    result: dict = {"window": args.window, "batch": args.batch, "repeats": args.repeats, "dtype": args.dtype,
                    "jax_platforms": os.environ.get("JAX_PLATFORMS", "")}
    published, converted = _checkpoints(args, work, result)
    steps = {"start": [], "start_in_process": [], "load_joblib": [], "read_joblib": [],
             "load_safetensors": [], "read_safetensors": [], "verify_sha256": [], "device_put": [],
             "trace_lower": [], "compile_cold": [], "compile_warm": []}
    for r in range(args.repeats):
        print(f"repeat {r + 1}/{args.repeats} ...", flush=True)
        wall, out = child(START)
        steps["start"].append(wall)
        steps["start_in_process"].append(out["in_process_s"])
        result["device"] = out["device"]
        _, out = child(LOAD.format(path=str(published)))
        steps["load_joblib"].append(out["load_model_s"])
        steps["read_joblib"].append(out["read_tree_s"])
        _, out = child(LOAD.format(path=str(converted)))
        steps["load_safetensors"].append(out["load_model_s"])
        steps["read_safetensors"].append(out["read_tree_s"])
        steps["verify_sha256"].append(out["verify_s"])
        steps["device_put"].append(out["device_put_s"])
        cache = work / f"xla_cache_{r}"
        shutil.rmtree(cache, ignore_errors=True)
        code = COMPILE.format(cache=str(cache), path=str(converted), window=args.window, batch=args.batch,
                              dtype=args.dtype)
        _, cold = child(code)
        _, warm = child(code)
        if cold["misses"] < 1 or warm["hits"] < 1 or warm["misses"]:
            raise RuntimeError(f"persistent cache not used as expected: cold {cold}, warm {warm}")
        steps["trace_lower"] += [cold["lower_s"], warm["lower_s"]]
        steps["compile_cold"].append(cold["compile_s"])
        steps["compile_warm"].append(warm["compile_s"])
        result["tokens"] = cold["tokens"]
    result["steps"] = {k: median_of(v) for k, v in steps.items() if v}
    return result


def report_startup(res: dict) -> str:
    s = {k: v["median_s"] for k, v in res["steps"].items()}
    gb = res["joblib_bytes"] / 1e9
    rows = [
        ("interpreter + JAX start (fresh process, wall)", s["start"]),
        (f"load_model, published joblib ({gb:.2f} GB)", s["load_joblib"]),
        ("   of which reading the pickle into host memory", s["read_joblib"]),
        ("load_model, converted safetensors (incl. SHA-256)", s["load_safetensors"]),
        ("   of which mapping the safetensors file", s["read_safetensors"]),
        ("   SHA-256 verification on its own (overlaps the rest)", s["verify_sha256"]),
        ("   copy of the tree to the device on its own", s["device_put"]),
        (f"trace + lower the forward pass ({res['window']} bp x {res['batch']}, {res.get('dtype', 'float32')})", s["trace_lower"]),
        ("XLA compile, empty persistent cache", s["compile_cold"]),
        ("XLA compile, warm persistent cache (new process)", s["compile_warm"]),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"device: {res.get('device')}   repeats: {res['repeats']} (medians)"]
    lines += [f"{name:<{width}}  {sec:8.2f} s" for name, sec in rows]
    if "convert_s" in res:
        lines.append(f"{'(one-off) genoseg convert-model':<{width}}  {res['convert_s']:8.2f} s")
    return "\n".join(lines)


# ----------------------------------------------------------------- task
TASK = """
import json, time
t0 = time.perf_counter()
from genoseg import predict
stats = {{}}
inner = predict.predict_chunk
def keep(*a, **k):
    stats.update(inner(*a, **k))
    return stats
predict.predict_chunk = keep
from genoseg.cli import main
rc = main({argv!r})
print(json.dumps({{"rc": rc, "in_process_s": time.perf_counter() - t0, "stats": stats}}))
"""


def _task(args, work: pathlib.Path) -> dict:
    import numpy as np

    result: dict = {"dtype": args.dtype, "batch": args.batch, "megabases": args.megabases}
    _, converted = _checkpoints(args, work, result)
    fasta, plan = work / "task.fa", work / "task_plan"
    rng = np.random.default_rng(0)
    with open(fasta, "w") as fh:
        for c in range(2):
            seq = np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, int(args.megabases * 5e5))].tobytes()
            fh.write(f">chr{c + 1}\n" + "\n".join(seq[i:i + 80].decode() for i in range(0, len(seq), 80)) + "\n")
    shutil.rmtree(plan, ignore_errors=True)
    child(f"from genoseg.cli import main; raise SystemExit(main({['-q', 'plan', '--fasta', str(fasta), '--model', str(converted), '--outdir', str(plan), '--windows-per-chunk', '1000000']!r}))")
    cache = work / "task_xla_cache"
    shutil.rmtree(cache, ignore_errors=True)
    for label in ("cold", "warm"):
        out = work / f"task_{label}.parquet"
        argv = ["-q", "predict", "--fasta", str(fasta), "--model", str(converted), "--chunk",
                str(plan / "chunks" / "chunk_00000.json"), "--out", str(out), "--overwrite",
                "--compute-dtype", args.dtype, "--batch-size", str(args.batch), "--jax-cache-dir", str(cache)]
        wall, res = child(TASK.format(argv=argv))
        st = res["stats"]
        result[label] = {"wall_s": wall, "chunk_s": st["seconds"], "compile_s": st["compile_s"],
                         "fixed_s": wall - st["seconds"] + st["compile_s"],
                         "computed_windows": st["computed_windows"],
                         "model_windows_per_s": st["computed_windows"] / max(st["seconds"] - st["compile_s"], 1e-9),
                         "device_idle_fraction": st["device_idle_fraction"]}
    return result


def report_task(res: dict) -> str:
    lines = [f"one genoseg predict task: {res['megabases']} Mb, {res['dtype']}, batch {res['batch']}"]
    for label in ("cold", "warm"):
        r = res[label]
        lines.append(f"  {label} cache: wall {r['wall_s']:.1f} s = chunk {r['chunk_s']:.1f} s (of which compile "
                     f"{r['compile_s']:.1f} s) + start/imports/weights {r['wall_s'] - r['chunk_s']:.1f} s; "
                     f"fixed cost {r['fixed_s']:.1f} s; {r['computed_windows']} windows at "
                     f"{r['model_windows_per_s']:.1f}/s, device idle {r['device_idle_fraction']:.1%}")
    return "\n".join(lines)


# ----------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("startup", help="start-up, weight loading and compile times (published SegmentNT size)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--window", type=int, default=30_000, help="window in bp (multiple of 24; default 30,000)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                   help="compute dtype of the traced and compiled forward (bfloat16: the fused attention on GPU)")
    p.add_argument("--layers", type=int, default=None, help="fewer layers than the published 29 (quick runs)")
    p.add_argument("--workdir", default=None, help="keep the checkpoint and caches here (reused when present)")
    p.add_argument("--keep", action="store_true", help="do not delete the temporary directory")
    p.add_argument("--json", default=None, help="also write the results as JSON here")
    p.set_defaults(run=in_workdir(_startup), report=report_startup)
    t = sub.add_parser("task", help="one whole genoseg predict task (cold and warm compilation cache)")
    t.add_argument("--megabases", type=float, default=6.0)
    t.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--layers", type=int, default=None, help="fewer layers than the published 29 (quick runs)")
    t.add_argument("--workdir", default=None, help="reuse the checkpoint made by startup here")
    t.add_argument("--keep", action="store_true")
    t.add_argument("--json", default=None)
    t.set_defaults(run=in_workdir(_task), report=report_task)
    args = ap.parse_args(argv)
    res = args.run(args)
    print(args.report(res))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
