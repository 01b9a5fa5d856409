#!/usr/bin/env python
"""Micro-benchmark of ``model.predict``: bases per second by window length and batch size.

CPU: SegmentNT at two random-weight sizes (the golden "tiny" shape and a "small" one),
plus the tiny golden SegmentEnformer / SegmentBorzoi checkpoints. On a GPU the same run
also compares the two attention paths (einsum vs fused ``dot_product_attention``, which
uses cuDNN for bfloat16) and float32 vs bfloat16.

Compile time is measured separately (first call); throughput is the median of
``--repeats`` timed calls. Usage::

    python benchmarks/bench_predict.py [--quick] [--repeats 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time

import jax
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from genoseg.models import load_model  # noqa: E402
from genoseg.models.segment_nt import SegmentNTConfig, build_model, random_params  # noqa: E402

GOLDEN = ROOT / "tests" / "data" / "golden"
FEATURES = tuple(json.loads((GOLDEN / "segment_nt_tiny" / "jax_model" / "hyperparams.json").read_text())["features"])
NT_SIZES = {
    "tiny": dict(embed_dim=32, attention_heads=4, key_dim=8, ffn_embed_dim=64, num_layers=2),
    "small": dict(embed_dim=256, attention_heads=8, key_dim=32, ffn_embed_dim=512, num_layers=4),
}


def nt_model(size: str, dtype: str, attention: str):
    cfg = SegmentNTConfig(features=FEATURES, use_glu_in_ffn=True, ffn_activation_name="swish",
                          add_bias_ffn=False, use_rotary_embedding=True,
                          rescaling_factor=5000 / 2048, **NT_SIZES[size])
    return build_model(cfg, random_params(cfg), compute_dtype=dtype, attention=attention)


def random_windows(rng, batch: int, length: int, alphabet: str = "ACGT") -> list[str]:
    letters = np.frombuffer(alphabet.encode(), dtype=np.uint8)
    codes = letters[rng.integers(0, len(letters), size=(batch, length))]
    return [row.tobytes().decode() for row in codes]


def time_predict(model, length: int, batch: int, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    seqs = random_windows(rng, batch, length)
    t0 = time.perf_counter()
    model.predict(seqs)
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.predict(seqs)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {"length": length, "batch": batch, "compile_s": round(compile_s, 3),
            "median_s": round(med, 5), "bases_per_s": round(batch * length / med)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="fewer shapes (for CI smoke runs)")
    ap.add_argument("--json", help="also write the rows as JSON here")
    args = ap.parse_args(argv)

    backend = jax.default_backend()
    on_gpu = backend == "gpu"
    lengths = [1536, 6144] if args.quick else [1536, 6144, 12288]
    batches = [1, 8] if args.quick else [1, 4, 16]
    dtypes = ["float32", "bfloat16"] if on_gpu else ["float32"]
    attentions = ["einsum", "dot_product"] if on_gpu else ["einsum"]
    sizes = ["tiny"] if args.quick else ["tiny", "small"]
    print(f"backend: {backend} ({jax.devices()[0].device_kind}); median of {args.repeats} runs")
    rows = []
    header = f"{'model':28s} {'dtype':9s} {'attention':11s} {'length':>7s} {'batch':>5s} {'compile s':>9s} {'median s':>9s} {'bases/s':>12s}"
    print(header)
    print("-" * len(header))

    def report(name, dtype, attention, r):
        rows.append({"model": name, "dtype": dtype, "attention": attention, **r})
        print(f"{name:28s} {dtype:9s} {attention:11s} {r['length']:7d} {r['batch']:5d} "
              f"{r['compile_s']:9.2f} {r['median_s']:9.4f} {r['bases_per_s']:12,d}")

    for size in sizes:
        for dtype in dtypes:
            for attention in attentions:
                model = nt_model(size, dtype, attention)
                for length in lengths:
                    for batch in batches:
                        report(f"segment_nt ({size}, random)", dtype, attention,
                               time_predict(model, length, batch, args.repeats))

    for name, lengths_other in [("segment_enformer_tiny", [2048, 8192]), ("segment_borzoi_tiny", [2048, 8192])]:
        for dtype in dtypes:
            try:
                model = load_model(GOLDEN / name, compute_dtype=dtype)
            except (ImportError, NotImplementedError, ValueError) as exc:
                print(f"{name}: skipped ({exc})")
                break
            for length in lengths_other:
                for batch in batches:
                    report(name, dtype, "-", time_predict(model, length, batch, args.repeats))

    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
