"""Throughput and peak memory of ``genoseg genes`` against the other CPU steps.

Builds (once, in ``--work``) a synthetic genome of ``--length`` bases (default 100 Mb,
4 contigs, mixed case, a few N gaps) and its prediction dataset from the fake fast model
(tests/fakes.py: every feature's probability is a fixed random 9-bp convolution of the
sequence, so ``protein_coding_gene``/``lncRNA`` are high almost everywhere and the whole
genome is gene-bearing: the decoder's worst case). Then runs, each in its own child
process (``genoseg`` CLI; wall and CPU seconds from ``wait4``, the child's peak RSS),
``genes``
with 1 and ``--threads`` threads, and ``call`` and ``tracks`` on the same dataset as the
baseline of the same run; ``--repeats`` runs each, medians reported.

Usage::

    PYTHONPATH=src python benchmarks/bench_genes.py [--length 100000000] [--threads 2] [--repeats 1]
        [--steps genes,genes-threads,call,tracks] [--work DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, os.path.join(REPO, "src"))

BLOCK = 1_000_000
STEPS = ("genes", "genes-threads", "call", "tracks")


def make_genome(work: str, length: int, contigs: int = 4, seed: int = 0) -> tuple[str, str]:
    """``work/genome.fa`` and ``work/out/segment_nt/predictions`` (fake model), built in
    1 Mb blocks so memory stays small; reused when present."""
    from fakes import FakeModel

    from genoseg import store

    fasta = os.path.join(work, "genome.fa")
    ddir = store.dataset_dir(os.path.join(work, "out"), "segment_nt")
    if os.path.exists(os.path.join(ddir, store.META_FILE)) and os.path.exists(fasta + ".fai"):
        return fasta, ddir
    os.makedirs(work, exist_ok=True)
    rng = np.random.default_rng(seed)
    model = FakeModel(backbone="segment_enformer", window_length=BLOCK + 8, length_multiple=1)
    lut = np.frombuffer(b"ACGTacgt", np.uint8)
    sizes = [length // contigs + (1 if k < length % contigs else 0) for k in range(contigs)]
    chunk = os.path.join(work, "chunk.parquet")
    meta = store.base_metadata(model.features, "segment_nt", plan_id="bench-genes", chunk=0)
    with open(fasta, "wb") as fa, store.PredictionWriter(chunk, model.features, meta) as w:
        for k, size in enumerate(sizes):
            name = f"chr{k + 1}"
            fa.write(f">{name}\n".encode())
            for lo in range(0, size, BLOCK):
                n = min(BLOCK, size - lo)
                block = lut[rng.integers(0, 8, n)]
                if lo and rng.random() < 0.1:
                    block[:5_000] = ord("N")  # an assembly gap: no predictions there
                seq = block.tobytes().decode()
                probs = model.predict([seq.upper().ljust(BLOCK + 8, "N")])[0, :n]
                keep = block != ord("N")
                w.write(np.flatnonzero(keep) + lo, store.quantize(probs[keep]), chrom=name)
                fa.write(b"\n".join(block[i:i + 100].tobytes() for i in range(0, n, 100)) + b"\n")
    plan = {"plan_id": "bench-genes", "n_chunks": 1, "contigs": [{"name": f"chr{k + 1}"} for k in range(contigs)]}
    store.write_dataset(ddir, plan, [chunk], overwrite=True)
    os.remove(chunk)
    import pysam

    pysam.faidx(fasta)
    return fasta, ddir


_CHILD = """
import sys
from genoseg.cli import main
code = main(sys.argv[2:])
hwm = [ln.split()[1] for ln in open("/proc/self/status") if ln.startswith("VmHWM:")][0]
open(sys.argv[1], "w").write(hwm)
sys.exit(code)
"""


def run_child(argv: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system, all threads) and peak RSS (MB, the
    child's own ``VmHWM``: ``ru_maxrss`` of a forked child would include the parent's
    memory) of one ``genoseg`` child process."""
    import tempfile

    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "src"))
    with tempfile.NamedTemporaryFile("r", suffix=".hwm") as hwm:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", _CHILD, hwm.name, "-q", *argv], env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"failed: genoseg {' '.join(argv)}")
        return wall, usage.ru_utime + usage.ru_stime, int(hwm.read()) / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--length", type=int, default=100_000_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--work", default=None, help="where the genome and dataset are built (default: a temp dir)")
    ap.add_argument("--steps", default="genes,genes-threads,call,tracks",
                    help="comma-separated subset of genes,genes-threads,call,tracks (call on the fake model's "
                         "noise writes millions of segments: more than 5 GB at 100 Mb; skip it where disk is short)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    wanted = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(STEPS))
    if unknown:
        ap.error(f"--steps: unknown {', '.join(unknown)} (choose from {', '.join(STEPS)})")
    import tempfile

    work = args.work or tempfile.mkdtemp(prefix="bench-genes-")
    t0 = time.perf_counter()
    fasta, ddir = make_genome(work, args.length)
    from genoseg import store

    bases = sum(store.read_metadata(ddir)["rows"].values())
    print(f"genome: {args.length:,} bp, {bases:,} predicted bases; built in {time.perf_counter() - t0:.0f} s",
          file=sys.stderr)
    all_steps = {
        "genes": ("genes (1 thread)", ["genes", "--predictions", ddir, "--fasta", fasta, "--threads", "1"]),
        "genes-threads": (f"genes ({args.threads} threads)", ["genes", "--predictions", ddir, "--fasta", fasta,
                                                              "--threads", str(args.threads)]),
        "call": ("call", ["call", "--predictions", ddir]),
        "tracks": ("tracks", ["tracks", "--predictions", ddir, "--fasta", fasta]),
    }
    steps = dict(all_steps[s] for s in wanted)
    # one warm-up genes run on a small contig compiles (and caches) the numba kernel
    run_child(["genes", "--predictions", ddir, "--fasta", fasta, "--contigs", "chr1", "--outdir",
               os.path.join(work, "warmup"), "--overwrite"])
    results = {}
    for name, argv in steps.items():
        runs = []
        for r in range(args.repeats):
            out = os.path.join(work, f"run-{len(results)}-{r}")
            shutil.rmtree(out, ignore_errors=True)
            runs.append(run_child(argv + ["--outdir", out]))
            shutil.rmtree(out, ignore_errors=True)
        wall = statistics.median(w for w, _, _ in runs)
        cpu = statistics.median(c for _, c, _ in runs)
        rss = max(m for _, _, m in runs)
        results[name] = {"seconds": round(wall, 2), "cpu_seconds": round(cpu, 2), "bases_per_second": round(bases / wall),
                         "bases_per_cpu_second": round(bases / cpu), "peak_rss_mb": round(rss)}
        print(f"{name:20s} {wall:8.1f} s  {bases / wall / 1e6:6.2f} Mb/s   CPU {cpu:8.1f} s  "
              f"{bases / cpu / 1e6:6.2f} Mb per CPU-s   peak RSS {rss:,.0f} MB", file=sys.stderr)
    if args.json:
        print(json.dumps({"bases": bases, "length": args.length, "steps": results}, indent=1))


if __name__ == "__main__":
    main()
