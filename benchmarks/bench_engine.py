"""Genome engine benchmark.

``memory``: a synthetic contig (default 50 Mb, a few N gaps) with the fake fast model
(tests/fakes.py): plan -> predict (every chunk) -> collect -> read back, reporting
seconds and bases/s per step, Parquet bytes per base, and peak RSS of the process.

``throughput``: the tiny SegmentNT checkpoint (tests/data/golden/segment_nt_tiny) on a
synthetic genome: bases/s per step (median of ``--repeats`` runs), against a baseline
in the same run: the bare model forward over the same windows (batched
``predict_tokens``, no FASTA reading, merging or writing).

``stages``: every CPU stage in its own child process (bases/s, bases per CPU second and
the child's peak RSS), for datasets at each ``--sizes`` length: ``noise`` (one contig
of the fake fast model's output: plan -> predict (host side: read, tokenise, merge,
write; the model is a fake) -> collect -> call -> tracks -> report -> read back),
``realistic`` (the bundled demo model's output on the simulated demo genome, tiled to
the length: collect -> call -> tracks -> report -> read back) and ``scaffolds`` (the
same bases cut into ``--scaffolds`` contigs: time must follow the bases, not the
contigs). ``--quick`` for tests. The machine is shared: run with ``--repeats`` and read
the medians printed at the end; ``--baseline-src OTHER/src`` runs every stage of
another checkout in pairs with this one (A/B on the same data, median of the ratios).

Usage::

    PYTHONPATH=src python benchmarks/bench_engine.py memory [--length 50000000] [--json]
    PYTHONPATH=src python benchmarks/bench_engine.py throughput [--length 200000] [--json]
    PYTHONPATH=src python benchmarks/bench_engine.py stages [--sizes 10,50,100] [--datasets noise,realistic]
    PYTHONPATH=src python benchmarks/bench_engine.py stages --sizes 10 --datasets realistic,scaffolds \
        --skip report,read --repeats 5 --baseline-src ../main/src
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
#: the genoseg sources measured (``stages --baseline-src`` runs the stages of another
#: checkout in the same run: A/B pairs)
SRC = os.environ.get("GENOSEG_BENCH_SRC") or os.path.join(REPO, "src")
sys.path.insert(0, SRC)

from genoseg import store, windows  # noqa: E402
from genoseg.fasta import Fasta  # noqa: E402
from genoseg.predict import predict_chunk  # noqa: E402


def peak_rss_mb() -> float:
    """Peak RSS of this process (VmHWM: unlike ru_maxrss, it does not start from the
    parent's RSS after fork + exec)."""
    try:
        with open("/proc/self/status") as fh:
            return next(int(ln.split()[1]) for ln in fh if ln.startswith("VmHWM:")) / 1024.0
    except (OSError, StopIteration):
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


# ------------------------------------------------------------------------- stages
def _stage_child(stage: str, work: str, length: int, threads: int) -> dict:
    """One stage, run in this (child) process; returns seconds and details."""
    from genoseg import calls, report, tracks

    ds = os.path.join(work, "out", "segment_nt", "predictions")
    bdir = os.path.dirname(ds)
    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    extra = {}
    if stage == "plan":
        from fakes import FakeModel

        g = windows.geometry_from_model(FakeModel(window_length=6144, length_multiple=24), None)
        windows.make_plan(os.path.join(work, "synth.fa"), g, os.path.join(work, "plan"), 1024, overwrite=True)
    elif stage == "predict":
        from fakes import FakeModel

        model = FakeModel(window_length=6144, length_multiple=24)
        plan = json.load(open(os.path.join(work, "plan", "plan.json")))
        chunk_dir = os.path.join(work, "plan", "chunks")
        stats = []
        with Fasta(os.path.join(work, "synth.fa"), check_duplicates=False) as fa:
            for name in sorted(os.listdir(chunk_dir)):
                if name.endswith(".json"):
                    ch = json.load(open(os.path.join(chunk_dir, name)))
                    stats.append(predict_chunk(model, fa, ch, os.path.join(work, name[:-5] + ".parquet"),
                                               batch_size=8, overwrite=True))
        extra = {k: round(sum(float(st.get(k, 0.0)) for st in stats), 3)
                 for k in stats[0] if k.endswith("_s")} if stats else {}
        extra["chunks"] = plan["n_chunks"]
    elif stage == "collect":
        plan = json.load(open(os.path.join(work, "plan", "plan.json")))
        files = sorted(os.path.join(work, f) for f in os.listdir(work) if f.endswith(".parquet"))
        store.write_dataset(ds, plan, files, overwrite=True)
        extra["bytes_per_base"] = round(dir_bytes(ds) / length, 3)
    elif stage == "call":
        calls.call_dataset(ds, os.path.join(bdir, "calls"), overwrite=True, threads=threads)
    elif stage == "tracks":
        tracks.write_tracks(ds, os.path.join(bdir, "tracks"), overwrite=True, threads=threads)
    elif stage == "report":
        report.write_report(bdir, os.path.join(bdir, "report.html"), overwrite=True)
    elif stage == "read":
        rows = 0
        for c in store.list_contigs(ds):
            for pos, codes in store.iter_codes(ds, c):
                rows += pos.size
        extra["rows"] = rows
    return {"stage": stage, "seconds": time.perf_counter() - t0, "cpu_s": _cpu_s() - cpu0,
            "peak_rss_mb": peak_rss_mb(), **extra}


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process and its finished children: unlike wall
    time, hardly changed by other work on a shared machine; bases per CPU second is the
    per-core throughput."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def run_stage(stage: str, work: str, length: int, threads: int = 1, src: str = SRC) -> dict:
    """Run one stage in a child process on the genoseg sources ``src``."""
    import subprocess

    env = dict(os.environ, PYTHONPATH=src, GENOSEG_BENCH_SRC=src, GENOSEG_THREADS=str(threads))
    res = subprocess.run([sys.executable, os.path.abspath(__file__), "_stage", stage, "--workdir", work,
                          "--length", str(length), "--threads", str(threads)],
                         capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"stage {stage} failed:\n{res.stderr[-3000:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["bases_per_s"] = length / out["seconds"]
    out["bases_per_cpu_s"] = length / max(out["cpu_s"], 1e-9)
    return out


def realistic_codes(length: int) -> tuple[list[str], np.ndarray]:
    """The demo model's predictions on the simulated demo genome (seed 7; made once in
    the temporary directory), tiled to ``length`` bases: ``(features, codes uint8
    [length, F])``."""
    from genoseg.annotate import AnnotateOptions, annotate
    from genoseg.cli import main as cli

    demo = os.path.join(tempfile.gettempdir(), "genoseg_bench_demo")
    ds = os.path.join(demo, "out", "segment_nt", "predictions")
    if not os.path.isdir(ds):
        cli(["-q", "simulate", "--seed", "7", "--out", os.path.join(demo, "genome")])
        annotate(os.path.join(demo, "genome", "genome.fa"), os.path.join(demo, "out"), None,
                 AnnotateOptions(downstream=False, overwrite=True))
    feats = store.read_metadata(ds)["features"]
    codes = np.concatenate([c for ctg in store.list_contigs(ds) for _, c in store.iter_codes(ds, ctg)])
    return feats, np.resize(codes, (length, codes.shape[1]))


def tiled_realistic(work: str, length: int, scaffolds: int = 1) -> None:
    """The demo model's predictions on the simulated demo genome (seed 7), tiled to
    ``length`` bases: one contig ``chrT``, or ``scaffolds`` contigs of equal length
    (``scaffold_0`` ...: a fragmented assembly), as one chunk file + plan (collect's input)."""
    feats, codes = realistic_codes(length)
    bounds = np.linspace(0, length, scaffolds + 1).astype(np.int64)
    names = ["chrT"] if scaffolds == 1 else [f"scaffold_{i}" for i in range(scaffolds)]
    plan = {"plan_id": f"tiled-{length}-{scaffolds}", "n_chunks": 1,
            "contigs": [{"name": n, "length": int(b - a)} for n, a, b in zip(names, bounds[:-1], bounds[1:])]}
    os.makedirs(os.path.join(work, "plan"), exist_ok=True)
    with open(os.path.join(work, "plan", "plan.json"), "w") as fh:
        json.dump(plan, fh)
    meta = store.base_metadata(feats, "segment_nt", plan_id=plan["plan_id"], chunk=0)
    with store.PredictionWriter(os.path.join(work, "c00000.parquet"), feats, meta) as w:
        for name, a, b in zip(names, bounds[:-1].tolist(), bounds[1:].tolist()):
            for lo in range(a, b, 1 << 20):
                hi = min(b, lo + (1 << 20))
                w.write(np.arange(lo - a, hi - a, dtype=np.int64), codes[lo:hi], chrom=name)


#: stages run per dataset (noise makes its own predictions with the fake model)
STAGES = {"noise": ["plan", "predict", "collect", "call", "tracks", "report", "read"],
          "realistic": ["collect", "call", "tracks", "report", "read"],
          "scaffolds": ["collect", "call", "tracks", "report", "read"]}


def cmd_stages(a) -> list[dict]:
    """Each dataset is made once per size; then each repeat runs every stage (with
    ``--baseline-src``: the baseline's run first, then this checkout's, as pairs)."""
    import shutil

    rows = []
    codes = [("new", SRC)] + ([("baseline", os.path.abspath(a.baseline_src))] if a.baseline_src else [])
    for size in [int(float(x) * 1_000_000) for x in a.sizes.split(",")]:
        for dataset in a.datasets.split(","):
            work = tempfile.mkdtemp(prefix=f"bench_{dataset}_", dir=a.workdir)
            if dataset == "noise":
                synth_fasta(os.path.join(work, "synth.fa"), size)
            else:
                tiled_realistic(work, size, a.scaffolds if dataset == "scaffolds" else 1)
            for rep in range(a.repeats):
                for st in STAGES[dataset]:
                    if st in a.skip.split(","):
                        continue
                    for code, src in reversed(codes):  # this checkout's outputs are read next
                        r = run_stage(st, work, size, a.threads, src)
                        r.update(dataset=dataset, mb=size / 1e6, repeat=rep, code=code)
                        rows.append(r)
                        print(f"{dataset:10s} {size / 1e6:6.1f} Mb  {st:8s} {code:8s} {r['bases_per_s'] / 1e6:8.2f} Mb/s "
                              f"{r['bases_per_cpu_s'] / 1e6:8.2f} Mb/CPU-s  {r['peak_rss_mb']:7.0f} MB  "
                              f"({r['seconds']:.1f} s, {r['cpu_s']:.1f} CPU-s)", file=sys.stderr, flush=True)
            shutil.rmtree(work, ignore_errors=True)
    print_medians(rows)
    return rows


def print_medians(rows: list[dict]) -> None:
    """Medians over the repeats per dataset, size, stage (and code); with a baseline,
    the median of the pairwise ratios of bases per CPU second (new / baseline)."""
    groups: dict[tuple, dict[str, list]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["mb"], r["stage"]), {}).setdefault(r["code"], []).append(r)
    print(f"\n{'dataset':10s} {'Mb':>6s} {'stage':8s} {'code':8s} {'Mb/CPU-s':>9s} {'Mb/s':>7s} {'peak MB':>8s}"
          f" {'n':>3s} {'new/base':>8s}", file=sys.stderr)
    for (dataset, mb, stage), by in groups.items():
        ratio = ""
        if "baseline" in by:
            pairs = [n["bases_per_cpu_s"] / b["bases_per_cpu_s"] for n, b in zip(by["new"], by["baseline"])]
            ratio = f"{statistics.median(pairs):8.2f}"
        for code, rs in by.items():
            print(f"{dataset:10s} {mb:6.1f} {stage:8s} {code:8s} "
                  f"{statistics.median(r['bases_per_cpu_s'] for r in rs) / 1e6:9.2f} "
                  f"{statistics.median(r['bases_per_s'] for r in rs) / 1e6:7.2f} "
                  f"{max(r['peak_rss_mb'] for r in rs):8.0f} {len(rs):3d} {ratio if code == 'new' else '':>8s}",
                  file=sys.stderr)


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "_stage":
        q = argparse.ArgumentParser()
        q.add_argument("stage")
        q.add_argument("--workdir")
        q.add_argument("--length", type=int)
        q.add_argument("--threads", type=int, default=1)
        b = q.parse_args(sys.argv[2:])
        print(json.dumps(_stage_child(b.stage, b.workdir, b.length, b.threads)))
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["memory", "throughput", "stages"])
    p.add_argument("--sizes", default="10,50,100", help="stages: lengths in Mb")
    p.add_argument("--datasets", default="noise,realistic",
                   help="stages: noise, realistic, scaffolds (realistic output cut into --scaffolds contigs)")
    p.add_argument("--scaffolds", type=int, default=20_000, help="stages: contigs of the scaffolds dataset")
    p.add_argument("--baseline-src", default=None,
                   help="stages: the src/ directory of another checkout, run in pairs with this one")
    p.add_argument("--skip", default="", help="stages: comma-separated stages to leave out")
    p.add_argument("--threads", type=int, default=1, help="stages: --threads of call and tracks")
    p.add_argument("--quick", action="store_true", help="stages: 1 Mb, one repeat (for tests)")
    p.add_argument("--length", type=int, default=None)
    p.add_argument("--window-length", type=int, default=None)
    p.add_argument("--windows-per-chunk", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workdir", default=None)
    p.add_argument("--json", action="store_true", help="print one JSON line at the end")
    a = p.parse_args()
    if a.mode == "stages":
        if a.quick:
            a.sizes, a.repeats = "1", 1
        res = cmd_stages(a)
        if a.json:
            print(json.dumps(res))
        return 0
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
