"""``genoseg plan`` on fragmented assemblies: time, peak memory and plan/chunk sizes.

Writes a synthetic assembly of ``--scaffolds`` scaffolds (lengths log-uniform between
``--min-length`` and ``--max-length``, mixed case, a short N gap in every tenth) and
plans it, reporting seconds, bases/s, peak RSS and the bytes of ``plan.json`` and the
chunk files (and of the staged sequences with ``--stage``). Median of ``--repeats``.

Usage::

    PYTHONPATH=src python benchmarks/bench_plan.py [--scaffolds 100000] [--stage] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "src"))

from genoseg import windows  # noqa: E402


def scaffold_fasta(path: str, n: int, min_length: int, max_length: int, seed: int = 0) -> int:
    """Write ``n`` scaffolds ``scaf_000001``...; returns the total bases."""
    rng = np.random.default_rng(seed)
    lengths = np.exp(rng.uniform(np.log(min_length), np.log(max_length), n)).astype(np.int64)
    lut = np.frombuffer(b"ACGTacgt", np.uint8)
    with open(path, "wb") as fh:
        for i, L in enumerate(lengths.tolist()):
            seq = lut[rng.integers(0, 8, L)]
            if i % 10 == 9 and L > 200:
                seq[L // 2:L // 2 + 50] = ord("N")
            fh.write(b">scaf_%06d\n" % (i + 1))
            for lo in range(0, L, 80):
                fh.write(seq[lo:lo + 80].tobytes() + b"\n")
    return int(lengths.sum())


def dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scaffolds", type=int, default=100_000)
    ap.add_argument("--min-length", type=int, default=500)
    ap.add_argument("--max-length", type=int, default=5_000)
    ap.add_argument("--backbone", default="segment_nt")
    ap.add_argument("--window-length", type=int, default=1536)
    ap.add_argument("--stage", action="store_true", help="also stage each chunk's sequence")
    ap.add_argument("--target-chunks", type=int, default=None, help="default: genoseg plan's --chunk-seconds")
    ap.add_argument("--windows-per-chunk", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        fa = os.path.join(tmp, "scaffolds.fa")
        t0 = time.perf_counter()
        bases = scaffold_fasta(fa, args.scaffolds, args.min_length, args.max_length)
        gen_s = time.perf_counter() - t0
        g = windows.geometry_for(args.backbone, window_length=args.window_length)
        times = []
        for r in range(args.repeats):
            out = os.path.join(tmp, f"plan{r}")
            kw = {"stage_sequences": True} if args.stage else {}
            t0 = time.perf_counter()
            sizing = windows.ChunkSizing.from_options(args.windows_per_chunk, target_chunks=args.target_chunks)
            plan, chunks = windows.make_plan(fa, g, out, sizing, **kw)
            times.append(time.perf_counter() - t0)
        res = {"scaffolds": args.scaffolds, "bases": bases, "generate_s": round(gen_s, 2),
               "plan_s": round(statistics.median(times), 2),
               "plan_bases_per_s": round(bases / statistics.median(times)),
               "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
               "windows": plan["n_windows"], "chunks": plan["n_chunks"],
               "plan_json_bytes": os.path.getsize(os.path.join(out, "plan.json")),
               "chunks_dir_bytes": dir_bytes(os.path.join(out, "chunks")),
               "fasta_bytes": os.path.getsize(fa)}
        if args.stage:
            staged = [os.path.join(out, "chunks", ch["sequence_file"]) for ch in chunks]
            res["staged_bytes"] = sum(os.path.getsize(f) for f in staged)
            res["staged_bytes_per_base"] = round(res["staged_bytes"] / bases, 3)
            res["staged_bases"] = sum(p["reads"][1] - p["reads"][0] for ch in chunks for p in ch["parts"])
    print(json.dumps(res) if args.json else "\n".join(f"{k:>18}: {v}" for k, v in res.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
