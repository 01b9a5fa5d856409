"""genoseg plan: chunks sized by work, staged chunk sequences, deterministic plan ids,
fragmented assemblies, and the hg38 cost model."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from fakes import FakeModel  # noqa: E402
from seqdata import rand_seq, write_fasta  # noqa: E402

from genoseg import windows  # noqa: E402
from genoseg.cli import main  # noqa: E402
from genoseg.fasta import Fasta, scan_contig, scan_contigs  # noqa: E402
from genoseg.predict import predict_chunk  # noqa: E402
from genoseg.staging import ChunkSequence  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TINY_NT = os.path.join(HERE, "data", "golden", "segment_nt_tiny")




@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    """Runs of every size (several window lengths, a skipped short run), N gaps, a
    short contig and a tiny one."""
    rng = np.random.default_rng(21)
    chr1 = (rand_seq(rng, 3000) + "N" * 40 + rand_seq(rng, 150) + "N" + rand_seq(rng, 60) + "NN"
            + rand_seq(rng, 10) + "R" + rand_seq(rng, 1700) + "nnn")
    recs = [("chr1", chr1), ("chr2", rand_seq(rng, 900)), ("c3", "NN" + rand_seq(rng, 200)), ("c4", rand_seq(rng, 30))]
    return write_fasta(tmp_path_factory.mktemp("g") / "g.fa", recs), dict(recs)


def predict_all(model, fasta, plan_dir, chunks, staged=False):
    """Predict every chunk (from the FASTA or its staged sequences) -> {chunk: table}."""
    out = {}
    for ch in chunks:
        f = os.path.join(plan_dir, f"c{ch['chunk']}{'s' if staged else ''}.parquet")
        src = (ChunkSequence(os.path.join(plan_dir, "chunks", ch["sequence_file"]), ch) if staged
               else Fasta(fasta, check_duplicates=False))
        with src as fa:
            predict_chunk(model, fa, ch, f, batch_size=3, overwrite=True)
        t = pq.read_table(f).select(["chrom", "pos"] + model.features)
        out[ch["chunk"]] = t.set_column(0, "chrom", t["chrom"].cast("string"))  # dictionaries differ per file
    return out


def merged(tables):
    import pyarrow as pa

    return pa.concat_tables([tables[k] for k in sorted(tables)]).combine_chunks()


# ----------------------------------------------------------------------- work sizing
def test_window_seconds_follow_length_and_backbone():
    g = windows.geometry_for("segment_nt")
    full, half, smallest = windows.window_seconds(g, [30_000, 14_976, 1_872])
    assert full == pytest.approx(windows.WORK_TABLE["segment_nt"][0])
    # FLOP ratios of the published SegmentNT (XLA cost analysis): 0.407 and 0.041
    assert half / full == pytest.approx(0.407, abs=0.02) and smallest / full == pytest.approx(0.041, abs=0.01)
    mine = windows.window_seconds(g, [30_000, 15_000 - 24], seconds_per_window=0.04)
    assert mine[0] == pytest.approx(0.04) and mine[1] == pytest.approx(0.04 * half / full, rel=1e-3)
    g96 = windows.geometry_for("segment_nt", window_length=96)
    assert windows.window_seconds(g96, [96], seconds_per_window=2.0)[0] == pytest.approx(2.0)
    enf = windows.geometry_for("segment_enformer")
    assert windows.window_seconds(enf, [196_608])[0] < full  # 3.5 vs 8.2 TFLOP


def test_chunk_seconds_and_target_chunks_balance_work():
    g = windows.geometry_for("segment_nt", window_length=96)
    rng = np.random.default_rng(0)
    recs = [(f"s{i}", int(n)) for i, n in enumerate(rng.integers(30, 2000, 300))]
    plan, chunks = windows.plan_from_lengths(recs, g, windows.ChunkSizing(chunk_seconds=5, seconds_per_window=0.1))
    work = [sum(windows.window_seconds(g, [n for p in ch["parts"] for n in [w[1] for w in p["compute"]]],
                                       0.1)) for ch in chunks]
    listed = sum(k * windows.window_seconds(g, [int(n)], 0.1)[0] for c in plan["contigs"]
                 for n, k in c["window_lengths"].items())  # halo windows not counted
    assert plan["chunking"]["chunk_seconds"] == 5 and len(chunks) == round(listed / 5 + 0.5)
    assert max(work) < 5 + 0.4 and min(work[:-1]) > 5 - 0.4  # each within a window or two of the target
    assert [ch["work_seconds"] for ch in chunks] == pytest.approx(work, abs=1e-3)
    plan, chunks = windows.plan_from_lengths(recs, g, windows.ChunkSizing(target_chunks=7))
    assert plan["n_chunks"] == len(chunks) == 7
    w = np.array([ch["work_seconds"] for ch in chunks])
    assert w.max() / w.min() < 1.2
    # shorter windows cost less: a chunk of short windows holds more of them
    short = [(f"t{i}", 60) for i in range(200)] + [(f"u{i}", 2000) for i in range(20)]
    _, chunks = windows.plan_from_lengths(short, g, windows.ChunkSizing(target_chunks=2))
    assert chunks[0]["n_windows"] - chunks[1]["n_windows"] == 200  # 400 48-bp windows weigh as 200 of 96 bp
    assert chunks[0]["work_seconds"] == pytest.approx(chunks[1]["work_seconds"], rel=0.01)
    # explicit windows per chunk as before
    _, chunks = windows.plan_from_lengths(recs, g, 50)
    assert {ch["n_windows"] for ch in chunks[:-1]} == {50}


@pytest.mark.parametrize("bad, message", [
    (dict(), "give one of"), (dict(windows_per_chunk=4, target_chunks=2), "got --windows-per-chunk, --target-chunks"),
    (dict(windows_per_chunk=0), "--windows-per-chunk 0"), (dict(target_chunks=2.5), "--target-chunks 2.5"),
    (dict(chunk_seconds=-1.0), "--chunk-seconds -1.0"), (dict(chunk_seconds=float("nan")), "--chunk-seconds nan"),
    (dict(chunk_seconds=10, seconds_per_window=0), "--seconds-per-window 0"),
])
def test_chunk_sizing_refuses_bad_values(bad, message):
    with pytest.raises(windows.GenosegError, match=message.replace("-", r"\-").replace(".", r"\.")):
        windows.ChunkSizing(**bad)


def test_hg38_segment_nt_default_makes_tens_of_tasks_not_thousands():
    """The plan default for hg38 (chromosome lengths; N gaps counted as sequence)."""
    sys.path.insert(0, os.path.join(REPO, "benchmarks"))
    import cost_model

    sizing = windows.ChunkSizing(chunk_seconds=windows.DEFAULT_CHUNK_SECONDS)
    plan, chunks = windows.plan_from_lengths(cost_model.HG38, windows.geometry_for("segment_nt"), sizing)
    assert 195_000 < plan["n_windows"] < 215_000  # 3.1 Gb / 15 kb steps
    assert 20 <= plan["n_chunks"] <= 150  # not ~3,000 (64 windows per task)
    fixed = cost_model.FixedCost()
    shapes = cost_model.task_shapes(plan, chunks)
    assert max(shapes) == len(plan["window_lengths"]) == 5  # layout-only plans: every length counted
    m = cost_model.task_model_seconds(plan, chunks, 0.04)
    assert cost_model.busy_fraction(m, shapes, fixed, 0) >= 0.90  # issue 11's goal at 0.04 s/window
    # each GPU's first task compiles cold: more held time, less busy
    assert cost_model.busy_fraction(m, shapes, fixed, 16) < cost_model.busy_fraction(m, shapes, fixed, 0)
    m01 = cost_model.task_model_seconds(plan, chunks, 0.1)
    assert sum(m01) == pytest.approx(2.5 * sum(m)) and cost_model.busy_fraction(m01, shapes, fixed, 0) > 0.95


def test_cost_model_reads_a_real_plan(genome, tmp_path, capsys):
    sys.path.insert(0, os.path.join(REPO, "benchmarks"))
    import cost_model

    fa, _ = genome
    assert main(["plan", "--fasta", fa, "--backbone", "segment_nt", "--window-length", "96",
                 "--target-chunks", "3", "--outdir", str(tmp_path / "p")]) == 0
    assert cost_model.main(["--plan", str(tmp_path / "p" / "plan.json"), "--json", "--fixed-seconds", "1",
                            "--seconds-per-window", "0.1,0.04"]) == 0
    out = json.loads(capsys.readouterr().out)
    (row,) = out["plans"]
    assert row["tasks"] == 3 and not row["layout_only"] and row["windows"] == json.load(open(tmp_path / "p" / "plan.json"))["n_windows"]
    assert 0 < row["busy_warm@0.04"] < row["busy_warm@0.1"] < 1
    assert row["compute_windows"] >= row["windows"]


# ------------------------------------------------------------------ chunking invariance
def test_all_sizings_give_identical_predictions(genome, tmp_path):
    fa, _ = genome
    m = FakeModel(window_length=96)
    g = windows.geometry_from_model(m)
    ref = None
    for i, sizing in enumerate([windows.ChunkSizing(windows_per_chunk=1000), windows.ChunkSizing(windows_per_chunk=2),
                                windows.ChunkSizing(target_chunks=4),
                                windows.ChunkSizing(chunk_seconds=0.0002, seconds_per_window=0.0001)]):
        d = str(tmp_path / f"p{i}")
        plan, chunks = windows.make_plan(fa, g, d, sizing)
        t = merged(predict_all(m, fa, d, chunks))
        if ref is None:
            ref, n_ref = t, plan["n_chunks"]
            assert n_ref == 1
        else:
            assert plan["n_chunks"] > 1 and t.equals(ref)


# --------------------------------------------------------------------------- staging
@pytest.mark.parametrize("backbone, crop", [("segment_nt", 0), ("segment_borzoi", 16)])
def test_staged_sequences_give_identical_predictions(genome, tmp_path, backbone, crop):
    fa, seqs = genome
    m = FakeModel(backbone=backbone, window_length=96, length_multiple=8 if crop else 24, crop=crop)
    g = windows.geometry_from_model(m)
    d = str(tmp_path / "plan")
    plan, chunks = windows.make_plan(fa, g, d, windows.ChunkSizing(target_chunks=5), stage_sequences=True)
    assert plan["n_chunks"] == 5
    staged_bases = 0
    for ch in chunks:
        base = os.path.join(d, "chunks", ch["sequence_file"])
        assert ch["sequence_file"] == f"chunk_{ch['chunk']:05d}.fa.gz"
        assert all(os.path.isfile(base + ext) for ext in ("", ".fai", ".gzi"))
        on_disk = json.load(open(os.path.join(d, "chunks", f"chunk_{ch['chunk']:05d}.json")))
        assert on_disk == ch
        import pysam

        with pysam.FastaFile(base) as f:
            assert list(f.references) == [p["contig"] for p in ch["parts"]]
            for p in ch["parts"]:
                lo, hi = p["reads"]
                assert f.fetch(p["contig"]) == seqs[p["contig"]][lo:hi]  # record = contig bases [lo, hi)
                staged_bases += hi - lo
                ends = [s + n for s, n in p["compute"]]
                assert lo == max(0, p["compute"][0][0]) and hi == min(p["contig_length"], max(ends))
    assert staged_bases < 1.5 * sum(len(s) for s in seqs.values())  # each base about once (+ halos)
    a = predict_all(m, fa, d, chunks)
    b = predict_all(m, fa, d, chunks, staged=True)
    assert all(a[k].equals(b[k]) for k in a) and sum(t.num_rows for t in a.values()) > 0


def test_stage_and_predict_from_the_command_line(genome, tmp_path, capsys):
    fa, _ = genome
    d = tmp_path / "plan"
    assert main(["plan", "--fasta", fa, "--model", TINY_NT, "--window-length", "96", "--target-chunks", "2",
                 "--stage-sequences", "--outdir", str(d)]) == 0
    c0, c1 = (str(d / "chunks" / f"chunk_0000{i}") for i in (0, 1))
    # a task that stages only its chunk: the chunk file and its sequence, nothing else
    task = tmp_path / "task"
    task.mkdir()
    for ext in (".json", ".fa.gz", ".fa.gz.fai", ".fa.gz.gzi"):
        shutil.copy(c1 + ext, task)
    assert main(["predict", "--sequence", str(task / "chunk_00001.fa.gz"), "--model", TINY_NT,
                 "--chunk", str(task / "chunk_00001.json"), "--out", str(task / "s.parquet")]) == 0
    assert main(["predict", "--fasta", fa, "--model", TINY_NT, "--chunk", c1 + ".json",
                 "--out", str(tmp_path / "f.parquet")]) == 0
    assert pq.read_table(task / "s.parquet").equals(pq.read_table(tmp_path / "f.parquet"))
    # the index is rebuilt when it was not staged
    os.remove(task / "chunk_00001.fa.gz.fai")
    os.remove(task / "chunk_00001.fa.gz.gzi")
    assert main(["predict", "--sequence", str(task / "chunk_00001.fa.gz"), "--model", TINY_NT,
                 "--chunk", str(task / "chunk_00001.json"), "--out", str(task / "s2.parquet")]) == 0
    assert pq.read_table(task / "s2.parquet").equals(pq.read_table(tmp_path / "f.parquet"))
    capsys.readouterr()
    # another chunk's sequence is refused, naming the file; nothing written
    out = tmp_path / "wrong.parquet"
    assert main(["predict", "--sequence", c0 + ".fa.gz", "--model", TINY_NT, "--chunk", c1 + ".json",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "chunk_00000.fa.gz" in err and "not the sequence file of chunk 1" in err and not out.exists()
    with pytest.raises(SystemExit) as exc:
        main(["predict", "--fasta", fa, "--sequence", c1 + ".fa.gz", "--model", TINY_NT, "--chunk",
              c1 + ".json", "--out", str(out)])
    assert exc.value.code == 2 and "not allowed with" in capsys.readouterr().err


def test_chunk_sequence_refuses_reads_outside_the_staged_range(genome, tmp_path):
    fa, seqs = genome
    g = windows.geometry_for("segment_nt", window_length=96)
    d = str(tmp_path / "p")
    _, chunks = windows.make_plan(fa, g, d, windows.ChunkSizing(target_chunks=3), stage_sequences=True)
    ch = chunks[1]
    p = ch["parts"][0]
    lo, hi = p["reads"]
    with ChunkSequence(os.path.join(d, "chunks", ch["sequence_file"]), ch) as s:
        assert s.length(p["contig"]) == p["contig_length"]
        got = s.fetch_bytes(p["contig"], lo, hi).tobytes().decode()
        assert got == seqs[p["contig"]][lo:hi]
        with pytest.raises(windows.GenosegError, match="outside the staged range"):
            s.fetch_bytes(p["contig"], lo - 1, hi) if lo > 0 else s.fetch_bytes(p["contig"], lo, hi + 1)


# ------------------------------------------------------------------- plan identity
def test_plan_id_is_deterministic_and_plans_hold_no_paths(genome, tmp_path):
    fa, _ = genome
    other = tmp_path / "elsewhere" / "renamed.fa"
    other.parent.mkdir()
    shutil.copy(fa, other)
    args = ["--backbone", "segment_nt", "--window-length", "96", "--target-chunks", "3", "--stage-sequences"]
    for name, path in (("a", fa), ("b", str(other))):
        assert main(["plan", "--fasta", path, "--outdir", str(tmp_path / name)] + args) == 0
    pa, pb = (json.load(open(tmp_path / n / "plan.json")) for n in "ab")
    assert pa["plan_id"] == pb["plan_id"] and pa["fasta"]["identity"] == pb["fasta"]["identity"]
    for n in "ab":
        for f in [tmp_path / n / "plan.json"] + sorted((tmp_path / n / "chunks").glob("*.json")):
            text = f.read_text()
            assert str(tmp_path) not in text and os.path.dirname(fa) not in text and '"/' not in text, f
    ca = sorted((tmp_path / "a" / "chunks").glob("*.fa.gz"))
    cb = sorted((tmp_path / "b" / "chunks").glob("*.fa.gz"))
    assert [f.read_bytes() for f in ca] == [f.read_bytes() for f in cb]  # staged files identical too
    # what decides predictions changes the id; estimates do not
    g = windows.geometry_for("segment_nt", window_length=96)
    ids = {windows.make_plan(fa, g, None, s)[0]["plan_id"] for s in (
        windows.ChunkSizing(target_chunks=3), windows.ChunkSizing(target_chunks=3, seconds_per_window=9.0))}
    assert ids == {pa["plan_id"]}
    assert windows.make_plan(fa, g, None, windows.ChunkSizing(target_chunks=4))[0]["plan_id"] != pa["plan_id"]
    assert windows.make_plan(fa, g, None, windows.ChunkSizing(target_chunks=3), contigs=["chr1", "chr2"])[0][
        "plan_id"] != pa["plan_id"]
    g2 = windows.geometry_for("segment_nt", window_length=96, overlap=0.25)
    assert windows.make_plan(fa, g2, None, windows.ChunkSizing(target_chunks=3))[0]["plan_id"] != pa["plan_id"]
    # a FASTA with one more base (its index differs) gets another id
    changed = tmp_path / "changed.fa"
    changed.write_text(open(fa).read().replace(">c4\n", ">c4\nA"))
    assert windows.make_plan(str(changed), g, None, windows.ChunkSizing(target_chunks=3))[0][
        "plan_id"] != pa["plan_id"]


# ---------------------------------------------------------------- fragmented genomes
def test_scan_contigs_equals_scan_contig(tmp_path):
    rng = np.random.default_rng(4)
    recs = [(f"s{i}", rand_seq(rng, int(rng.integers(1, 300)), "ACGTacgtNNRn")) for i in range(400)]
    recs.append(("long", rand_seq(rng, 3000, "ACGTN")))
    fa = write_fasta(tmp_path / "s.fa", recs)
    with Fasta(fa) as f:
        names = [c.name for c in f.contigs]
        batched = scan_contigs(f, names, block=700)
        for n, (s, e) in zip(names, batched):
            s0, e0 = scan_contig(f, n, block=700)
            np.testing.assert_array_equal(s, s0)
            np.testing.assert_array_equal(e, e0)
            assert s.dtype == np.int64
    with open(fa, "a") as fh:
        fh.write(">z1\nAC\n>bad\nACG*T\n>z2\nA\n")
    os.remove(fa + ".fai")
    with Fasta(fa) as f:
        with pytest.raises(windows.GenosegError, match=r"contig 'bad', position 3 \(0-based; 4 1-based\): '\*'"):
            scan_contigs(f, [c.name for c in f.contigs], block=700)


def test_plan_time_grows_with_windows_not_contigs_times_chunks():
    """10^5 scaffolds cut in 64-window chunks (~5,000 chunks): the old per-chunk scan of
    every contig took minutes; the vectorised layout and cut take seconds."""
    rng = np.random.default_rng(0)
    recs = [(f"scaffold_{i}", int(n)) for i, n in enumerate(np.exp(rng.uniform(np.log(500), np.log(5000), 100_000)))]
    g = windows.geometry_for("segment_nt", window_length=1536)
    t0 = time.perf_counter()
    plan, chunks = windows.plan_from_lengths(recs, g, 64)
    seconds = time.perf_counter() - t0
    assert plan["n_chunks"] == len(chunks) > 4000 and len(plan["contigs"]) == 100_000
    assert sum(len(ch["parts"]) for ch in chunks) < 100_000 + len(chunks)
    assert seconds < 60, seconds
    size = sum(len(json.dumps(ch, separators=(",", ":"))) for ch in chunks)
    assert size / 100_000 < 250  # bytes of chunk JSON per scaffold
