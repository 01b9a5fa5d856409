"""Genome engine: FASTA checks, window layout, chunk predict + merge, Parquet store, CLI."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from fakes import FakeModel  # noqa: E402
import seqdata  # noqa: E402
from seqdata import rand_seq  # noqa: E402

from genoseg import store, windows  # noqa: E402
from genoseg.cli import main  # noqa: E402
from genoseg.fasta import Fasta  # noqa: E402
from genoseg.predict import Jobs, predict_chunk  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TINY_NT = os.path.join(HERE, "data", "golden", "segment_nt_tiny")
REPO = os.path.dirname(HERE)


def write_fasta(path, records, width=60):
    return seqdata.write_fasta(path, records, width, description="description")


def genome(rng):
    """chr1: long runs, an N gap, a 70-bp run (48-bp windows with a 96-bp default), a 10-bp run (skipped)."""
    chr1 = (rand_seq(rng, 2000) + "N" * 50 + rand_seq(rng, 70) + "NN" + rand_seq(rng, 10) + "R"
            + rand_seq(rng, 700) + "nnnn")
    chr2 = rand_seq(rng, 600)
    return [("chr1", chr1), ("chr2", chr2)]


def run_engine(model, fasta, tmp, W, rc=False, window_length=None, batch_size=4):
    """plan -> predict every chunk -> collect -> read back {contig: (pos, probs)}."""
    g = windows.geometry_from_model(model, window_length)
    plan, chunks = windows.make_plan(fasta, g, os.path.join(tmp, f"plan{W}"), W, overwrite=True)
    files = []
    with Fasta(fasta, check_duplicates=False) as fa:
        for ch in chunks:
            f = os.path.join(tmp, f"plan{W}", f"c{ch['chunk']}.parquet")
            predict_chunk(model, fa, ch, f, batch_size=batch_size, reverse_complement=rc, overwrite=True)
            files.append(f)
    ds = os.path.join(tmp, f"out{W}")
    store.write_dataset(ds, plan, files, overwrite=True)
    out = {}
    for c in store.list_contigs(ds):
        parts = list(store.iter_predictions(ds, c, batch_rows=500))
        out[c] = (np.concatenate([p for p, _ in parts]), np.concatenate([q for _, q in parts]))
    return plan, ds, out


def assert_same(a, b):
    assert a.keys() == b.keys()
    for c in a:
        np.testing.assert_array_equal(a[c][0], b[c][0])
        np.testing.assert_array_equal(a[c][1], b[c][1])


@pytest.fixture(scope="module")
def tiny_nt():
    from genoseg.models import load_model

    return load_model(TINY_NT, window_length=192)


@pytest.fixture(scope="module")
def fasta(tmp_path_factory):
    d = tmp_path_factory.mktemp("genome")
    return write_fasta(d / "g.fa", genome(np.random.default_rng(7)))


# ------------------------------------------------------------------ chunking invariance
def test_chunking_invariance_tiny_segment_nt(tiny_nt, fasta, tmp_path):
    _, _, ref = run_engine(tiny_nt, fasta, str(tmp_path), W=1000)
    for W in (1, 3, 7):
        _, _, out = run_engine(tiny_nt, fasta, str(tmp_path), W=W, batch_size=3)
        assert_same(ref, out)
    _, _, again = run_engine(tiny_nt, fasta, str(tmp_path / "again"), W=1000)
    assert_same(ref, again)  # deterministic


def test_chunking_invariance_fake_rc(fasta, tmp_path):
    m = FakeModel(window_length=96)
    _, _, ref = run_engine(m, fasta, str(tmp_path), W=500, rc=True)
    for W in (1, 2, 5):
        _, _, out = run_engine(m, fasta, str(tmp_path), W=W, rc=True)
        assert_same(ref, out)


def test_single_window_value_is_model_output(tiny_nt, tmp_path):
    seq = rand_seq(np.random.default_rng(3), 192)
    fa = write_fasta(tmp_path / "one.fa", [("c", seq)])
    _, ds, out = run_engine(tiny_nt, fa, str(tmp_path), W=1)
    expect = tiny_nt.predict([seq])[0]
    pos, probs = out["c"]
    np.testing.assert_array_equal(pos, np.arange(192))
    np.testing.assert_array_equal(probs, store.quantize(expect) / np.float32(255))
    assert np.abs(probs - expect).max() <= 0.5 / 255 + 1e-6
    meta = store.read_metadata(ds)
    assert meta["encoding"] == "uint8_linear" and meta["scale"] == 255
    assert meta["features"] == tiny_nt.features and meta["backbone"] == "segment_nt"
    assert sorted(os.listdir(ds)) == ["_genoseg.json", "part-00000.parquet"]
    part = os.path.join(ds, "part-00000.parquet")
    fmeta = json.loads(pq.read_schema(part).metadata[b"genoseg"])
    assert fmeta["features"] == tiny_nt.features and "version" in fmeta
    assert fmeta["complete"] is True and fmeta["rows"] == 192 and fmeta["index"]["contig"] == ["c"]
    cols = pq.ParquetFile(part).metadata.row_group(0)
    assert "RLE_DICTIONARY" in cols.column(0).encodings  # chrom
    assert "DELTA_BINARY_PACKED" in cols.column(1).encodings  # pos
    assert cols.column(2).compression == "ZSTD"


# ----------------------------------------------------------------------------- windows
def test_segment_nt_coverage_and_skips(fasta, tmp_path):
    m = FakeModel(window_length=96)
    plan, _, out = run_engine(m, fasta, str(tmp_path), W=4)
    seqs = dict(genome(np.random.default_rng(7)))
    for name, seq in seqs.items():
        raw = np.frombuffer(seq.encode(), np.uint8)
        acgt = np.isin(raw, np.frombuffer(b"ACGTacgt", np.uint8))
        pos = out[name][0]
        covered = np.zeros(len(seq), bool)
        covered[pos] = True
        assert not covered[~acgt].any()  # N / R bases get nothing
        expected = acgt.copy()
        if name == "chr1":
            short = slice(2000 + 50 + 70 + 2, 2000 + 50 + 70 + 2 + 10)
            expected[short] = False  # 10-bp run < 24-bp minimum window
        np.testing.assert_array_equal(covered, expected)
        assert (np.diff(pos) > 0).all()
    c1 = plan["contigs"][0]
    assert c1["short_runs_skipped"] == 1 and c1["short_run_bases_skipped"] == 10
    assert set(c1["window_lengths"]) == {"96", "48"}  # the 70-bp run gets 48-bp windows
    assert plan["skipped_regions"][0]["start"] == 2122 and plan["skipped_regions"][0]["end"] == 2132
    assert len({w for c in plan["contigs"] for w in c["window_lengths"]}) <= 5


@pytest.mark.parametrize("crop", [0, 24])
def test_n_allowed_every_base_predicted(tmp_path, crop):
    rng = np.random.default_rng(5)
    seq = "N" * 30 + rand_seq(rng, 500) + "N" * 40 + rand_seq(rng, 333) + "RYN"
    fa = write_fasta(tmp_path / "n.fa", [("x", seq), ("allN", "N" * 400), ("short", "ACGTN")])
    m = FakeModel(backbone="segment_borzoi" if crop else "segment_enformer", window_length=96,
                  length_multiple=8, crop=crop)
    plan, _, ref = run_engine(m, fa, str(tmp_path), W=100)
    np.testing.assert_array_equal(ref["x"][0], np.arange(len(seq)))
    np.testing.assert_array_equal(ref["short"][0], np.arange(5))
    assert "allN" not in ref
    assert any(s.get("contig") == "allN" for s in plan["skipped"])
    for W in (1, 3):
        _, _, out = run_engine(m, fa, str(tmp_path), W=W)
        assert_same(ref, out)


def test_layout_tiles_runs():
    g = windows.geometry_from_model(FakeModel(window_length=96))
    lay = windows.layout_contig("c", 1000, (np.array([0, 300]), np.array([250, 1000])), g)
    assert set(lay.lengths.tolist()) == {96}
    s, e = lay.output_bounds(g)
    assert s[0] == 0 and e[lay.starts.size - 1] == 1000
    assert ((lay.starts >= 300) | (lay.starts + lay.lengths <= 250)).all()


def test_default_contig_selection(tmp_path):
    from genoseg.fasta import select_contigs, Contig

    names = ["chr1", "chrX", "chrM", "chr1_KI270706v1_random", "chrUn_GL000195v1", "chr6_GL000250v2_alt",
             "chrEBV", "HLA-A*01:01:01:01", "chr1_KN196472v1_fix", "1", "GL000192.1", "chrY_decoy"]
    used, skipped = select_contigs([Contig(n, 100) for n in names])
    assert [c.name for c in used] == ["chr1", "chrX", "chrM", "1"]
    assert len(skipped) == len(names) - 4
    used, _ = select_contigs([Contig(n, 100) for n in names], regex=r"^chrUn")
    assert [c.name for c in used] == ["chrUn_GL000195v1"]
    used, skipped = select_contigs([Contig("a", 10), Contig("b", 1000)], min_length=100)
    assert [c.name for c in used] == ["b"] and "min-contig-length" in skipped[0]["reason"]


# ------------------------------------------------------------------------- CLI + errors
def cli(*args):
    return main([str(a) for a in args])


def test_cli_end_to_end_bgzip_and_escaping(tmp_path, capsys):
    import pysam

    rng = np.random.default_rng(11)
    plain = write_fasta(tmp_path / "g.fa", [("a/b", rand_seq(rng, 300)), ("..", rand_seq(rng, 200)),
                                            ("../x", rand_seq(rng, 250))])
    bgz = str(tmp_path / "g.fa.gz")
    pysam.tabix_compress(plain, bgz)
    plan_dir, out = tmp_path / "plan", tmp_path / "out"
    assert cli("plan", "--fasta", bgz, "--model", TINY_NT, "--window-length", 96,
               "--windows-per-chunk", 4, "--outdir", plan_dir) == 0
    plan = json.load(open(plan_dir / "plan.json"))
    chunks = sorted(os.listdir(plan_dir / "chunks"))
    assert len(chunks) == plan["n_chunks"] >= 2
    files = []
    for c in chunks:
        f = tmp_path / (c + ".parquet")
        assert cli("predict", "--fasta", bgz, "--model", TINY_NT, "--chunk", plan_dir / "chunks" / c,
                   "--out", f, "--batch-size", 2) == 0
        files.append(f)
    assert cli("collect", "--plan", plan_dir / "plan.json", "--chunks", *files, "--outdir", out) == 0
    ds = store.dataset_dir(str(out), "segment_nt")
    assert store.list_contigs(ds) == ["a/b", "..", "../x"]
    root = os.path.realpath(out)
    for dirpath, dirnames, filenames in os.walk(out):
        for n in dirnames + filenames:
            assert os.path.realpath(os.path.join(dirpath, n)).startswith(root + os.sep)
    # contig names are never paths: one file per chunk, linked in unchanged
    assert sorted(os.listdir(ds)) == ["_genoseg.json"] + [f"part-{i:05d}.parquet" for i in range(len(chunks))]
    for i, f in enumerate(files):
        assert open(os.path.join(ds, f"part-{i:05d}.parquet"), "rb").read() == open(f, "rb").read()
    pos = np.concatenate([p for p, _ in store.iter_predictions(ds, "../x")])  # spans chunk files
    np.testing.assert_array_equal(pos, np.arange(250))
    # pyarrow reads the same names from the chrom column
    import pyarrow.dataset as pads
    t = pads.dataset(ds, format="parquet").to_table(columns=["chrom"])
    assert set(t.column("chrom").to_pylist()) == {"a/b", "..", "../x"}
    # existing outputs are not replaced without --overwrite
    assert cli("collect", "--plan", plan_dir / "plan.json", "--chunks", *files, "--outdir", out) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli("collect", "--plan", plan_dir / "plan.json", "--chunks", *files[1:], "--outdir", tmp_path / "o2") == 2
    assert "missing" in capsys.readouterr().err and not os.path.exists(tmp_path / "o2" / "segment_nt" / "predictions")


@pytest.mark.parametrize("case", ["non_iupac", "duplicate", "empty", "gzip", "no_records"])
def test_bad_fasta(tmp_path, capsys, case):
    path = tmp_path / "bad.fa"
    if case == "non_iupac":
        write_fasta(path, [("ok", "ACGT" * 50), ("chrB", "ACGT" * 20 + "AC*T")])
        expect = ["bad.fa", "chrB", "position 82", "'*'"]
    elif case == "duplicate":
        write_fasta(path, [("chrA", "ACGT" * 10), ("chrB", "ACGT"), ("chrA", "ACGT")])
        expect = ["bad.fa", "duplicate", "chrA"]
    elif case == "empty":
        path.write_text("")
        expect = ["bad.fa", "empty"]
    elif case == "gzip":
        path = tmp_path / "bad.fa.gz"
        with gzip.open(path, "wt") as fh:
            fh.write(">a\nACGT\n")
        expect = ["bad.fa.gz", "bgzip", "gunzip"]
    else:
        path.write_text("ACGT\nACGT\n")
        expect = ["bad.fa", "no FASTA records"]
    out = tmp_path / "plan"
    assert cli("plan", "--fasta", path, "--backbone", "segment_nt", "--window-length", 96,
               "--outdir", out) == 2
    err = capsys.readouterr().err
    assert len([ln for ln in err.splitlines() if "error:" in ln]) == 1
    for e in expect:
        assert e in err, (e, err)
    assert not os.path.exists(out / "plan.json") and not os.path.exists(out / "chunks")


def test_missing_model_files(tmp_path, fasta, capsys):
    plan_dir = tmp_path / "plan"
    assert cli("plan", "--fasta", fasta, "--backbone", "segment_nt", "--window-length", 96,
               "--outdir", plan_dir) == 0
    model = tmp_path / "model"
    (model / "jax_model").mkdir(parents=True)
    (model / "jax_model" / "hyperparams.json").write_text("{}")
    out = tmp_path / "c0.parquet"
    assert cli("predict", "--fasta", fasta, "--model", model, "--chunk", plan_dir / "chunks" / "chunk_00000.json",
               "--out", out) == 2
    assert "model" in capsys.readouterr().err
    assert not os.path.exists(out) and os.listdir(tmp_path) == sorted(os.listdir(tmp_path)) or True
    assert [f for f in os.listdir(tmp_path) if "c0.parquet" in f] == []
    assert cli("predict", "--fasta", fasta, "--model", tmp_path / "nope", "--chunk",
               plan_dir / "chunks" / "chunk_00000.json", "--out", out) == 2
    assert "nope" in capsys.readouterr().err


def test_annotate_in_one_process(tmp_path, fasta):
    from genoseg.annotate import AnnotateOptions, annotate

    m = FakeModel(window_length=96)
    t = annotate(fasta, str(tmp_path / "out"), m, AnnotateOptions(windows_per_chunk=5))
    bdir = tmp_path / "out" / "segment_nt"
    assert {s["step"] for s in t["steps"]} >= {"plan", "predict", "collect"}
    assert (bdir / "plan.json").exists() and (bdir / "predictions" / "_genoseg.json").exists()
    assert not [f for f in os.listdir(tmp_path / "out") if f.startswith(".genoseg-work")]
    with pytest.raises(Exception, match="already exists"):
        annotate(fasta, str(tmp_path / "out"), m, AnnotateOptions(windows_per_chunk=5))


@pytest.mark.slow
def test_bench_memory_50mb(tmp_path):
    """plan -> predict -> collect -> read back of a 10 Mb contig under 2 GB peak RSS
    (the 50 Mb run of benchmarks/bench_engine.py takes about 65 s: run it by hand)."""
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "src"))
    res = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "bench_engine.py"), "memory",
                          "--length", "10000000", "--workdir", str(tmp_path), "--json"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["peak_rss_mb"] < 2048
    assert 9_900_000 <= out["rows"] <= 10_000_000


@pytest.mark.slow
def test_bench_stages_quick(tmp_path):
    """benchmarks/bench_engine.py stages --quick: every stage of both datasets runs in
    its own child process and reports bases/s and a peak RSS under 2 GB."""
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "src"))
    res = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "bench_engine.py"), "stages", "--quick",
                          "--workdir", str(tmp_path), "--json"], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = json.loads(res.stdout.strip().splitlines()[-1])
    got = {(r["dataset"], r["stage"]) for r in rows}
    assert got == {("noise", s) for s in ("plan", "predict", "collect", "call", "tracks", "report", "read")} | {
        ("realistic", s) for s in ("collect", "call", "tracks", "report", "read")}
    assert all(r["bases_per_s"] > 0 and 50 < r["peak_rss_mb"] < 2048 for r in rows)
    assert [r["rows"] for r in rows if r["stage"] == "read"] == [1_000_000, 1_000_000]


def test_bench_gpu_quick(tmp_path):
    """benchmarks/bench_gpu.py --quick (tiny shapes, CPU): every SegmentNT row and the
    engine row are measured, the bfloat16 and dot_product rows agree with the float32
    einsum reference, and the engine computes every window of the genome."""
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "src"))
    out = tmp_path / "gpu.json"
    res = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "bench_gpu.py"), "--quick",
                          "--sections", "nt,engine", "--nt-batches", "1,2", "--repeats", "1",
                          "--engine-mb", "0.2", "--json", str(out)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = json.loads(out.read_text())
    nt = [r for r in rows if r["model"].startswith("segment_nt")]
    assert {(r["dtype"], r["attention"], r["batch"]) for r in nt} == {
        ("float32", "einsum", 2), ("bfloat16", "dot_product", 1), ("bfloat16", "dot_product", 2),
        ("bfloat16", "einsum", 2), ("float32", "dot_product", 2)}
    assert all("error" not in r and r["windows_per_s"] > 0 for r in nt)
    diffs = {(r["dtype"], r["attention"]): r["max_abs_diff"] for r in nt if "max_abs_diff" in r}
    assert diffs[("float32", "dot_product")] < 1e-5 and max(diffs.values()) < 1.5e-2
    (engine,) = [r for r in rows if r["model"].startswith("engine")]
    assert engine["bases"] == 200_000 and engine["windows_computed"] >= 200_000 // 768
    assert 0 <= engine["padded_fraction"] < 0.5


def test_bench_host_rate_quick(tmp_path):
    """benchmarks/bench_predict.py --host-rate: for each backbone's published window and
    both output patterns, the replayed windows cover the genome, and the GPU genome rates
    it compares against are the measured ones."""
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "src"))
    out = tmp_path / "host.json"
    res = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "bench_predict.py"), "--host-rate",
                          "--genome-mb", "1.2", "--json", str(out)], capture_output=True, text=True, env=env,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = json.loads(out.read_text())
    assert [(r["backbone"], r["pattern"]) for r in rows] == [
        (b, p) for b in ("segment_nt", "segment_enformer", "segment_borzoi") for p in ("noise", "realistic", "constant")]
    for r in rows:
        step = {"segment_nt": 15_000, "segment_enformer": 98_304, "segment_borzoi": 98_304}[r["backbone"]]
        assert r["windows"] >= 1_200_000 // step - 1 and r["bases_per_cpu_s"] > 0  # windows cover the genome
        assert r["gpu_bf16_bases_per_s"] > r["gpu_f32_bases_per_s"] > 0


def _plan_contig(tmp_path, seq: str, model, windows_per_chunk: int):
    """One contig ``c1`` of ``seq`` planned for ``model``'s window: (FASTA path, plan, chunks)."""
    fa_path = tmp_path / "g.fa"
    fa_path.write_text(">c1\n" + seq + "\n")
    g = windows.geometry_from_model(model, model.window_length)
    plan, chunks = windows.make_plan(str(fa_path), g, None, windows_per_chunk)
    return fa_path, g, plan, chunks


def _predict_and_read_back(tmp_path, fa_path, plan, chunks, model, batch_size: int):
    """Every chunk predicted with ``model``, collected, and contig ``c1`` read back."""
    paths = [str(tmp_path / f"c{ch['chunk']}.parquet") for ch in chunks]
    with Fasta(str(fa_path)) as fa:
        for ch, p in zip(chunks, paths):
            predict_chunk(model, fa, ch, p, batch_size=batch_size)
    ds = str(tmp_path / "ds")
    store.write_dataset(ds, plan, paths)
    parts = list(store.iter_codes(ds, "c1"))
    return np.concatenate([p for p, _ in parts]), np.concatenate([c for _, c in parts])


#: SegmentBorzoi's geometry scaled down: an output crop, windows past the contig ends
BORZOI_LIKE = dict(backbone="segment_borzoi", window_length=8192, crop=2048, length_multiple=128)


def test_replay_model_constant_output_survives_the_merge(tmp_path):
    """Windows that all predict one value per feature merge (taper-weighted average over
    overlaps, quantised) to that value's code at every base."""
    from fakes import ReplayModel

    seq = np.frombuffer(b"ACGT", np.uint8)[np.random.default_rng(3).integers(0, 4, 50_000)].tobytes().decode()
    model = ReplayModel("constant", **BORZOI_LIKE)
    fa_path, _, plan, chunks = _plan_contig(tmp_path, seq, model, 5)
    assert len(chunks) > 1
    pos, codes = _predict_and_read_back(tmp_path, fa_path, plan, chunks, model, 2)
    want = np.round(np.linspace(0.05, 0.95, len(model.features), dtype=np.float32) * store.SCALE)
    assert np.array_equal(pos, np.arange(50_000))  # every base, once
    assert np.array_equal(codes, np.broadcast_to(want.astype(np.uint8), codes.shape))


def test_replay_model_track_merges_back_to_the_track(tmp_path):
    """Windows that each predict their own slice of one per-base track (so overlapping
    windows agree) merge back to exactly that track at every base, with an output crop
    and windows reaching past both contig ends: no base is shifted, lost or repeated by
    the merge or the chunking."""
    from fakes import ReplayModel

    rng = np.random.default_rng(4)
    seq = np.frombuffer(b"ACGTacgt", np.uint8)[rng.integers(0, 8, 50_000)].tobytes().decode()
    track = rng.integers(0, 256, (50_000, 3)).astype(np.uint8)
    feats = ["a", "b", "c"]
    fa_path, g, plan, chunks = _plan_contig(tmp_path, seq, ReplayModel("constant", features=feats, **BORZOI_LIKE), 4)
    wins = [(int(s), int(n)) for ch in chunks for j in [Jobs.from_chunk(ch, g)] for s, n in zip(j.start, j.length)]
    assert min(s for s, _ in wins) < 0 and max(s + n for s, n in wins) > 50_000 and len(chunks) > 1
    model = ReplayModel("track", track=track, sequence=seq, windows=wins, features=feats, **BORZOI_LIKE)
    pos, codes = _predict_and_read_back(tmp_path, fa_path, plan, chunks, model, 3)
    assert np.array_equal(pos, np.arange(50_000)) and np.array_equal(codes, track)


def test_bench_predict_configs_build():
    """bench_predict's SegmentNT configs are accepted by the model (a config check once
    broke every benchmark run without any test noticing)."""
    sys.path.insert(0, os.path.join(REPO, "benchmarks"))
    import bench_predict

    model = bench_predict.nt_model("tiny", "float32", "auto")
    probs = model.predict(bench_predict.random_windows(np.random.default_rng(0), 2, 96))
    assert probs.shape == (2, 96, len(bench_predict.FEATURES)) and np.isfinite(probs).all()
    assert {bench_predict.nt_config(s).num_layers for s in bench_predict.NT_SIZES} == {2, 4, 29}
