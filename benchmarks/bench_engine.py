"""Genome engine benchmark.

``memory``: a synthetic contig (default 50 Mb, a few N gaps) with the fake fast model
(tests/fakes.py): plan -> predict (every chunk) -> collect -> read back, reporting
seconds and bases/s per step, Parquet bytes per base, and peak RSS of the process.

``throughput``: the tiny SegmentNT checkpoint (tests/data/golden/segment_nt_tiny) on a
synthetic genome: bases/s per step (median of ``--repeats`` runs), against a baseline
in the same run: the bare model forward over the same windows (batched
``predict_tokens``, no FASTA reading, merging or writing).

Usage::

    PYTHONPATH=src python benchmarks/bench_engine.py memory [--length 50000000] [--json]
    PYTHONPATH=src python benchmarks/bench_engine.py throughput [--length 200000] [--json]
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
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, os.path.join(REPO, "src"))

from genoseg import store, windows  # noqa: E402
from genoseg.fasta import Fasta  # noqa: E402
from genoseg.predict import predict_chunk  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def synth_fasta(path: str, length: int, seed: int = 0, gaps: int = 5) -> None:
    """One contig ``chrS`` of ``length`` bases (mixed case, ``gaps`` N runs of 10 kb),
    written in 1 Mb pieces so memory stays small."""
    rng = np.random.default_rng(seed)
    lut = np.frombuffer(b"ACGTacgt", np.uint8)
    gap_starts = set((rng.integers(0, max(1, length // 1_000_000), gaps) * 1_000_000).tolist())
    with open(path, "wb") as fh:
        fh.write(b">chrS synthetic\n")
        for lo in range(0, length, 1_000_000):
            n = min(1_000_000, length - lo)
            block = lut[rng.integers(0, 8, n)]
            if lo in gap_starts and lo > 0:
                block[:10_000] = ord("N")
            # 100-column lines
            pad = (-n) % 100
            lines = np.concatenate([block, np.full(pad, 0, np.uint8)]).reshape(-1, 100)
            out = np.concatenate([lines, np.full((lines.shape[0], 1), ord("\n"), np.uint8)], axis=1).ravel()
            if pad:
                out = np.concatenate([out[:-(pad + 1)], np.frombuffer(b"\n", np.uint8)])
            fh.write(out.tobytes())


def dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def run_pipeline(model, fasta: str, work: str, windows_per_chunk: int, batch_size: int,
                 window_length=None) -> dict:
    res = {}
    t0 = time.perf_counter()
    g = windows.geometry_from_model(model, window_length)
    plan, chunks = windows.make_plan(fasta, g, os.path.join(work, "plan"), windows_per_chunk, overwrite=True)
    res["plan_s"] = time.perf_counter() - t0
    res["plan_peak_rss_mb"] = peak_rss_mb()
    bases = sum(c["length"] for c in plan["contigs"])
    t0 = time.perf_counter()
    files, stats = [], []
    with Fasta(fasta, check_duplicates=False) as fa:
        for ch in chunks:
            f = os.path.join(work, f"c{ch['chunk']:05d}.parquet")
            stats.append(predict_chunk(model, fa, ch, f, batch_size=batch_size, overwrite=True))
            files.append(f)
    res["predict_s"] = time.perf_counter() - t0
    res["predict_peak_rss_mb"] = peak_rss_mb()
    for k in ("host_s", "device_wait_s", "merge_s"):
        res["predict_" + k] = sum(s.get(k, 0.0) for s in stats)
    t0 = time.perf_counter()
    ds = os.path.join(work, "out")
    store.write_dataset(ds, plan, files, overwrite=True)
    res["collect_s"] = time.perf_counter() - t0
    res["collect_peak_rss_mb"] = peak_rss_mb()
    t0 = time.perf_counter()
    rows, checksum = 0, 0.0
    for c in store.list_contigs(ds):
        for pos, probs in store.iter_predictions(ds, c):
            rows += pos.size
            checksum += float(probs[:, 0].sum(dtype=np.float64))
    res["read_s"] = time.perf_counter() - t0
    res["read_peak_rss_mb"] = peak_rss_mb()
    res.update(bases=bases, rows=rows, windows=plan["n_windows"], chunks=plan["n_chunks"],
               dataset_bytes=dir_bytes(ds), bytes_per_base=dir_bytes(ds) / max(rows, 1),
               chunk_bytes=sum(os.path.getsize(f) for f in files), checksum=checksum)
    for step in ("plan", "predict", "collect", "read"):
        res[step + "_bases_per_s"] = bases / res[step + "_s"]
    return res


def cmd_memory(a) -> dict:
    from fakes import FakeModel

    work = a.workdir or tempfile.mkdtemp(prefix="bench_engine_")
    fasta = os.path.join(work, "synth.fa")
    t0 = time.perf_counter()
    synth_fasta(fasta, a.length)
    make_s = time.perf_counter() - t0
    model = FakeModel(window_length=a.window_length, length_multiple=24)
    rss_before = peak_rss_mb()
    res = run_pipeline(model, fasta, work, a.windows_per_chunk, a.batch_size)
    res.update(mode="memory", length=a.length, synth_fasta_s=make_s, rss_before_mb=rss_before,
               peak_rss_mb=peak_rss_mb(), window_length=a.window_length, batch_size=a.batch_size,
               windows_per_chunk=a.windows_per_chunk)
    return res


def cmd_throughput(a) -> dict:
    from genoseg.models import load_model

    work = a.workdir or tempfile.mkdtemp(prefix="bench_engine_")
    fasta = os.path.join(work, "synth.fa")
    synth_fasta(fasta, a.length, gaps=0)
    model = load_model(os.path.join(REPO, "tests", "data", "golden", "segment_nt_tiny"),
                       window_length=a.window_length)
    run_pipeline(model, fasta, os.path.join(work, "warm"), a.windows_per_chunk, a.batch_size)  # compile
    runs = [run_pipeline(model, fasta, os.path.join(work, f"r{i}"), a.windows_per_chunk, a.batch_size)
            for i in range(a.repeats)]
    # baseline: bare batched forward over the same number of windows
    rng = np.random.default_rng(0)
    n_win = runs[0]["windows"]
    n_batches = -(-n_win // a.batch_size)
    seqs = ["".join(rng.choice(list("ACGT"), a.window_length)) for _ in range(a.batch_size)]
    tokens = model.tokenize(seqs)
    np.asarray(model.predict_tokens(tokens))
    base = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        outs = [model.predict_tokens(tokens) for _ in range(n_batches)]
        for o in outs:
            np.asarray(o)
        base.append(time.perf_counter() - t0)
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if isinstance(runs[0][k], (int, float))}
    med.update(mode="throughput", length=a.length, window_length=a.window_length, batch_size=a.batch_size,
               repeats=a.repeats, baseline_forward_s=statistics.median(base),
               baseline_forward_bases_per_s=runs[0]["bases"] / statistics.median(base),
               peak_rss_mb=peak_rss_mb())
    med["predict_vs_bare_forward"] = med["predict_s"] / med["baseline_forward_s"]
    return med


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["memory", "throughput"])
    p.add_argument("--length", type=int, default=None)
    p.add_argument("--window-length", type=int, default=None)
    p.add_argument("--windows-per-chunk", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workdir", default=None)
    p.add_argument("--json", action="store_true", help="print one JSON line at the end")
    a = p.parse_args()
    if a.mode == "memory":
        a.length = a.length or 50_000_000
        a.window_length = a.window_length or 6144
        a.windows_per_chunk = a.windows_per_chunk or 1024
        res = cmd_memory(a)
    else:
        a.length = a.length or 200_000
        a.window_length = a.window_length or 1536
        a.windows_per_chunk = a.windows_per_chunk or 32
        res = cmd_throughput(a)
    for k, v in res.items():
        print(f"{k:28s} {v:,.3f}" if isinstance(v, float) else f"{k:28s} {v}", file=sys.stderr)
    if a.json:
        print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
