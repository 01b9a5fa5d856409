"""Fragmented-assembly benchmark (issue 8): many scaffolds through every step.

A simulated assembly of ``--scaffolds`` scaffolds (default 100,000) with lengths drawn
from a truncated power law ``p(L) ~ L^-2`` on ``[--min-length, --max-length]`` (default
500 bp to 50 kb: mean ~2.3 kb, ~230 Mb in all; random A/C/G/T, half soft-masked) goes
through the steps of ``genoseg annotate`` with the fake fast model of tests/fakes.py
(SegmentNT geometry, ``--window-length`` 6,144 bp so that scaffolds down to 384 bp get
windows). The contiguous case is the same number of bases in ``--contiguous-contigs``
contigs, measured in the same run.

Each step runs in its own child process, which reports its wall time and peak RSS
(VmHWM; the peak of the step's worker processes, if any, is reported apart) and its CPU
seconds (user + system, threads and workers included: bases per CPU second is the
figure that holds on a shared machine): ``plan`` (the CLI, chunk
sizing by its defaults unless ``--windows-per-chunk``), ``predict`` (every chunk,
``predict_chunk`` with the fake model, as annotate does), ``collect``, ``call``,
``tracks`` and ``report`` (the CLI commands), and ``read`` (``store.iter_dataset``
over every feature). Printed per case: files and row groups in ``predictions/``,
bytes per predicted base, and the fragmented / contiguous ratio.

Usage::

    PYTHONPATH=src python benchmarks/bench_fragmented.py [--scaffolds 100000] [--json]
    PYTHONPATH=src python benchmarks/bench_fragmented.py --scaffolds 5000 --steps plan,predict,collect,read
    PYTHONPATH=src python benchmarks/bench_fragmented.py --steps annotate   # the whole job, one process
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
STEPS = ("plan", "predict", "collect", "call", "tracks", "report", "read")
#: ``annotate``: the whole job in one process (the Python API with the fake model), on
#: its own: ``--steps annotate`` (its outputs take the place of the separate steps').
ALL_STEPS = STEPS + ("annotate",)


# --------------------------------------------------------------------------- genome
def scaffold_lengths(n: int, lo: int, hi: int, seed: int = 0) -> np.ndarray:
    """``n`` lengths from ``p(L) ~ L^-2`` on ``[lo, hi]`` (inverse CDF)."""
    u = np.random.default_rng(seed).random(n)
    return np.floor(1.0 / (1.0 / lo - u * (1.0 / lo - 1.0 / hi))).astype(np.int64)


def write_fasta(path: str, records: list[tuple[str, int]], seed: int = 1, width: int = 80) -> int:
    """Random A/C/G/T (half the blocks lower case), ``width``-column lines; returns bases."""
    rng = np.random.default_rng(seed)
    upper, lower = np.frombuffer(b"ACGT", np.uint8), np.frombuffer(b"acgt", np.uint8)
    total = 0
    with open(path, "wb", buffering=1 << 22) as fh:
        for name, n in records:
            fh.write(b">" + name.encode() + b"\n")
            for lo in range(0, n, 8_000_000):  # bounded memory for long contigs
                m = min(8_000_000, n - lo)
                seq = (upper if rng.random() < 0.5 else lower)[rng.integers(0, 4, m)]
                pad = -m % width
                rows = np.concatenate([seq, np.zeros(pad, np.uint8)]).reshape(-1, width)
                text = np.concatenate([rows, np.full((rows.shape[0], 1), 10, np.uint8)], axis=1).ravel()
                if pad:
                    text = np.concatenate([text[:-(pad + 1)], text[-1:]])
                fh.write(text.tobytes())
            total += n
    return total


# ---------------------------------------------------------------------------- steps
def _cli(*args) -> None:
    from genoseg.cli import main

    rc = main([str(a) for a in args])
    if rc != 0:
        raise SystemExit(f"genoseg {args[0]} exited with {rc}")


def step_plan(work: str, a) -> dict:
    extra = ["--windows-per-chunk", a.windows_per_chunk] if a.windows_per_chunk else []
    _cli("plan", "--fasta", os.path.join(work, "genome.fa"), "--backbone", "segment_nt",
         "--window-length", a.window_length, "--outdir", os.path.join(work, "plan"), *extra)
    plan = json.load(open(os.path.join(work, "plan", "plan.json")))
    return {"windows": plan["n_windows"], "chunks": plan["n_chunks"],
            "bases": sum(c["length"] for c in plan["contigs"])}


def step_predict(work: str, a) -> dict:
    sys.path.insert(0, os.path.join(REPO, "tests"))
    from fakes import FakeModel

    from genoseg.fasta import Fasta
    from genoseg.predict import predict_chunk

    model = FakeModel(window_length=a.window_length, length_multiple=24)
    chunk_dir = os.path.join(work, "plan", "chunks")
    os.makedirs(os.path.join(work, "chunks_out"), exist_ok=True)
    rows = 0
    with Fasta(os.path.join(work, "genome.fa"), check_duplicates=False) as fa:
        for name in sorted(f for f in os.listdir(chunk_dir) if f.endswith(".json")):
            chunk = json.load(open(os.path.join(chunk_dir, name)))
            out = os.path.join(work, "chunks_out", name[:-5] + ".parquet")
            rows += predict_chunk(model, fa, chunk, out, batch_size=a.batch_size)["rows"]
    return {"rows": rows}


def step_collect(work: str, a) -> dict:
    d = os.path.join(work, "chunks_out")
    _cli("collect", "--plan", os.path.join(work, "plan", "plan.json"), "--outdir", os.path.join(work, "out"),
         "--chunks", *sorted(os.path.join(d, f) for f in os.listdir(d)))
    return {}


def step_call(work: str, a) -> dict:
    _cli("call", "--predictions", os.path.join(work, "out", "segment_nt", "predictions"),
         "--fai", os.path.join(work, "genome.fa.fai"), "--outdir", os.path.join(work, "out", "segment_nt", "calls"))
    return {}


def step_tracks(work: str, a) -> dict:
    _cli("tracks", "--predictions", os.path.join(work, "out", "segment_nt", "predictions"),
         "--fai", os.path.join(work, "genome.fa.fai"), "--outdir", os.path.join(work, "out", "segment_nt", "tracks"))
    return {}


def step_report(work: str, a) -> dict:
    bdir = os.path.join(work, "out", "segment_nt")
    _cli("report", "--outdir", bdir, "--out", os.path.join(bdir, "report.html"),
         "--plan", os.path.join(work, "plan", "plan.json"))
    return {"report_bytes": os.path.getsize(os.path.join(bdir, "report.html"))}


def step_annotate(work: str, a) -> dict:
    sys.path.insert(0, os.path.join(REPO, "tests"))
    from fakes import FakeModel

    from genoseg.annotate import AnnotateOptions, annotate

    model = FakeModel(window_length=a.window_length, length_multiple=24)
    t = annotate(os.path.join(work, "genome.fa"), os.path.join(work, "out"), model,
                 AnnotateOptions(windows_per_chunk=a.windows_per_chunk, batch_size=a.batch_size, threads=1))
    return {"step_seconds": {s["step"]: round(s["seconds"], 1) for s in t["steps"]}}


def step_read(work: str, a) -> dict:
    from genoseg import store

    rows, check = 0, 0
    for _, pos, codes in store.iter_dataset(os.path.join(work, "out", "segment_nt", "predictions")):
        rows += pos.size
        check += int(codes[:, 0].sum(dtype=np.int64))
    return {"rows": rows, "checksum": check}


def run_child(step: str, work: str, a) -> dict:
    """Run one step in a child process; its JSON line is the result."""
    cmd = [sys.executable, os.path.abspath(__file__), "_step", step, work, "--window-length", str(a.window_length),
           "--batch-size", str(a.batch_size)]
    if a.windows_per_chunk:
        cmd += ["--windows-per-chunk", str(a.windows_per_chunk)]
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise SystemExit(f"step {step} failed ({res.returncode}):\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def child_main(step: str, work: str, a) -> None:
    sys.path.insert(0, HERE)
    from bench_engine import peak_rss_mb

    t0 = time.perf_counter()
    out = globals()["step_" + step](work, a)
    out["seconds"] = time.perf_counter() - t0
    ru = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    out["cpu_seconds"] = sum(r.ru_utime + r.ru_stime for r in ru)  # incl. start-up and workers
    out["peak_rss_mb"] = peak_rss_mb()
    out["workers_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps(out))


# ---------------------------------------------------------------------------- cases
def storage(ds: str) -> dict:
    import pyarrow.parquet as pq

    from genoseg import store

    parts = sorted(f for f in os.listdir(ds) if f.endswith(".parquet"))
    meta = store.read_metadata(ds)
    rows = sum(meta["rows"].values())
    nbytes = sum(os.path.getsize(os.path.join(ds, f)) for f in os.listdir(ds))
    return {"files": len(os.listdir(ds)), "parquet_files": len(parts),
            "row_groups": sum(pq.ParquetFile(os.path.join(ds, f)).metadata.num_row_groups for f in parts),
            "contigs_with_rows": len(meta["contigs"]), "rows": rows, "dataset_bytes": nbytes,
            "index_bytes": os.path.getsize(os.path.join(ds, "_genoseg.json")),
            "bytes_per_base": nbytes / max(rows, 1)}


def run_case(name: str, records: list[tuple[str, int]], a, steps: list[str]) -> dict:
    work = os.path.join(a.workdir, name)
    os.makedirs(work, exist_ok=True)
    t0 = time.perf_counter()
    bases = write_fasta(os.path.join(work, "genome.fa"), records)
    res = {"case": name, "contigs": len(records), "bases": bases, "fasta_s": time.perf_counter() - t0, "steps": {}}
    for step in steps:
        r = run_child(step, work, a)
        r["mb_per_s"] = bases / r["seconds"] / 1e6
        r["mb_per_cpu_s"] = bases / r["cpu_seconds"] / 1e6
        res["steps"][step] = r
        print(f"  {name:11s} {step:8s} {r['seconds']:8.1f} s  {r['mb_per_s']:7.2f} Mb/s  "
              f"{r['cpu_seconds']:8.1f} CPU s  {r['mb_per_cpu_s']:7.2f} Mb/CPU s  peak RSS "
              f"{r['peak_rss_mb']:7.0f} MB" + (f" (workers {r['workers_peak_rss_mb']:.0f} MB)"
                                               if r["workers_peak_rss_mb"] > 1 else ""), file=sys.stderr)
    ds = os.path.join(work, "out", "segment_nt", "predictions")
    if os.path.isdir(ds):
        res["storage"] = storage(ds)
    return res


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scaffolds", type=int, default=100_000)
    p.add_argument("--min-length", type=int, default=500)
    p.add_argument("--max-length", type=int, default=50_000)
    p.add_argument("--contiguous-contigs", type=int, default=10, help="contigs of the contiguous case (0: skip it)")
    p.add_argument("--window-length", type=int, default=6144)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--windows-per-chunk", type=int, default=None, help="default: genoseg plan's chunk sizing")
    p.add_argument("--steps", default=",".join(STEPS), help="comma-separated subset of " + ",".join(STEPS))
    p.add_argument("--workdir", default=None)
    p.add_argument("--json", action="store_true", help="print one JSON line at the end")
    if len(sys.argv) > 1 and sys.argv[1] == "_step":
        p.add_argument("_", choices=["_step"])
        p.add_argument("step", choices=ALL_STEPS)
        p.add_argument("work")
        a = p.parse_args()
        child_main(a.step, a.work, a)
        return 0
    a = p.parse_args()
    steps = [s for s in a.steps.split(",") if s]
    bad = [s for s in steps if s not in ALL_STEPS]
    if bad or ("annotate" in steps and len(steps) > 1):
        p.error(f"unknown step(s) {bad}; choose from {','.join(STEPS)}, or annotate alone")
    a.workdir = a.workdir or tempfile.mkdtemp(prefix="bench_fragmented_")
    lengths = scaffold_lengths(a.scaffolds, a.min_length, a.max_length)
    cases = [("fragmented", [(f"scaffold_{i + 1}", int(n)) for i, n in enumerate(lengths)])]
    if a.contiguous_contigs:
        total, k = int(lengths.sum()), a.contiguous_contigs
        cases.insert(0, ("contiguous", [(f"chr{i + 1}", total // k + (i < total % k)) for i in range(k)]))
    print(f"{a.scaffolds:,} scaffolds, {int(lengths.sum()):,} bases, work dir {a.workdir}", file=sys.stderr)
    results = [run_case(name, recs, a, steps) for name, recs in cases]
    for r in results:
        s = r.get("storage")
        if s:
            print(f"  {r['case']:11s} {s['parquet_files']} Parquet files, {s['row_groups']} row groups, "
                  f"{s['bytes_per_base']:.3f} bytes/base (index {s['index_bytes'] / 1e6:.1f} MB)", file=sys.stderr)
    out = {"scaffolds": a.scaffolds, "window_length": a.window_length, "cases": results}
    if len(results) == 2 and all("storage" in r for r in results):
        out["bytes_per_base_ratio"] = (results[1]["storage"]["bytes_per_base"]
                                       / results[0]["storage"]["bytes_per_base"])
        print(f"  bytes/base fragmented / contiguous: {out['bytes_per_base_ratio']:.3f}", file=sys.stderr)
    if a.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
