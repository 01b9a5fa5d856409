"""The predictions store: chunk files, collect's checks, the index and the readers."""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest

from genoseg import store
from genoseg.errors import GenosegError

FEATURES = ["exon", "intron", "CTCF-bound"]


def codes_for(pos, seed):
    return np.random.default_rng(seed).integers(0, 256, (len(pos), len(FEATURES))).astype(np.uint8)


def write_chunk(path, plan_id, chunk, parts, row_group_rows=store.ROW_GROUP, **meta):
    """``parts``: [(contig, pos)] in order; codes are random (seeded by the position)."""
    m = store.base_metadata(FEATURES, "segment_nt", **{"plan_id": plan_id, "chunk": chunk,
                                                       "reverse_complement": False, "compute_dtype": "float32", **meta})
    with store.PredictionWriter(str(path), FEATURES, m, row_group_rows=row_group_rows) as w:
        for name, pos in parts:
            w.write(np.asarray(pos), codes_for(pos, int(pos[0])), chrom=name)
    return str(path)


def make_plan(contigs, n_chunks, plan_id="p1"):
    return {"plan_id": plan_id, "n_chunks": n_chunks,
            "contigs": [{"name": c, "predicted_bases": n} for c, n in contigs]}


@pytest.fixture()
def two_chunks(tmp_path):
    """Three contigs; ``b`` continues from chunk 0 into chunk 1."""
    a, b, c = np.arange(0, 1000), np.arange(5, 3005), np.arange(0, 700)
    f0 = write_chunk(tmp_path / "c0.parquet", "p1", 0, [("a", a), ("b", b[:1200])], row_group_rows=800)
    f1 = write_chunk(tmp_path / "c1.parquet", "p1", 1, [("b", b[1200:]), ("c", c)], row_group_rows=800)
    plan = make_plan([("a", 1000), ("b", 3000), ("c", 700)], 2)
    return plan, [f0, f1], {"a": a, "b": b, "c": c}


def test_collect_links_files_unchanged_and_indexes_them(tmp_path, two_chunks):
    plan, files, want = two_chunks
    ds = str(tmp_path / "ds")
    meta = store.write_dataset(ds, plan, files[::-1])  # any order on the command line
    assert sorted(os.listdir(ds)) == ["_genoseg.json", "part-00000.parquet", "part-00001.parquet"]
    for i, f in enumerate(files):
        assert open(os.path.join(ds, f"part-{i:05d}.parquet"), "rb").read() == open(f, "rb").read()
    assert meta == json.load(open(os.path.join(ds, "_genoseg.json")))
    assert meta["contigs"] == ["a", "b", "c"] and meta["rows"] == {"a": 1000, "b": 3000, "c": 700}
    assert store.contig_files(ds, "a") == [os.path.join(os.path.abspath(ds), "part-00000.parquet")]
    assert len(store.contig_files(ds, "b")) == 2
    for name, pos in want.items():
        got = list(store.iter_codes(ds, name, batch_rows=333))
        assert max(len(p) for p, _ in got) <= 333
        np.testing.assert_array_equal(np.concatenate([p for p, _ in got]), pos)
        codes = np.concatenate([q for _, q in got])
        # codes were written per write() call, seeded by its first position
        expect = ([codes_for(pos[:1200], 5), codes_for(pos[1200:], 1205)] if name == "b"
                  else [codes_for(pos, int(pos[0]))])
        np.testing.assert_array_equal(codes, np.concatenate(expect))
    pos, codes = next(store.iter_codes(ds, "a"))
    np.testing.assert_array_equal(codes, codes_for(np.arange(1000), 0)[:800])  # first row group
    with pytest.raises(ValueError):
        codes[0, 0] = 1  # read-only views of the cached row group
    pos, sub = next(store.iter_codes(ds, "a", features=["CTCF-bound", "exon"]))
    np.testing.assert_array_equal(sub, codes[:, [2, 0]])
    pos, probs = next(store.iter_predictions(ds, "a"))
    np.testing.assert_array_equal(probs, codes.astype(np.float32) / 255)
    with pytest.raises(GenosegError, match="unknown feature"):
        next(store.iter_codes(ds, "a", features=["nope"]))
    with pytest.raises(GenosegError, match="no predictions for contig 'zz'"):
        next(store.iter_codes(ds, "zz"))


def test_index_lists_the_devices_of_the_chunks(tmp_path):
    """Chunks predicted on different machines: each distinct device once, chunk order;
    a chunk whose model recorded no device adds nothing."""
    parts = [[("a", np.arange(0, 100))], [("a", np.arange(100, 200))], [("b", np.arange(50))],
             [("c", np.arange(10))]]
    devices = ["gpu: NVIDIA H100", None, "cpu: 2 cores", "gpu: NVIDIA H100"]
    files = [write_chunk(tmp_path / f"c{i}.parquet", "p1", i, p, **({"device": d} if d else {}))
             for i, (p, d) in enumerate(zip(parts, devices))]
    meta = store.write_dataset(str(tmp_path / "ds"), make_plan([("a", 200), ("b", 50), ("c", 10)], 4), files)
    assert meta["devices"] == ["gpu: NVIDIA H100", "cpu: 2 cores"]
    assert store.read_metadata(str(tmp_path / "ds"))["devices"] == meta["devices"]


def test_iter_dataset_streams_in_order_without_mixing_contigs(tmp_path, two_chunks):
    plan, files, want = two_chunks
    ds = str(tmp_path / "ds")
    store.write_dataset(ds, plan, files)
    got = {}
    for name, pos, codes in store.iter_dataset(ds, features=["intron"], batch_rows=250):
        assert codes.shape == (len(pos), 1) and len(pos) <= 250
        got.setdefault(name, []).append(pos)
    assert list(got) == ["a", "b", "c"]
    for name, pos in want.items():
        np.testing.assert_array_equal(np.concatenate(got[name]), pos)


def test_row_groups_small_contigs_share_large_contigs_own(tmp_path):
    """Row groups of at most ROW_GROUP rows; a contig boundary closes a group holding
    SHARED_ROWS rows, so large contigs start their own groups and 300 tiny ones share."""
    cap = 1000  # scaled down: shared = 250
    parts = [(f"s{i}", np.arange(40)) for i in range(300)] + [("big", np.arange(5000))] + [("t", np.arange(10))]
    f = write_chunk(tmp_path / "c.parquet", "p", 0, parts, row_group_rows=cap)
    md = pq.read_metadata(f)
    sizes = [md.row_group(i).num_rows for i in range(md.num_row_groups)]
    assert max(sizes) <= cap and sum(sizes) == 300 * 40 + 5010
    assert md.num_row_groups <= 300 * 40 // 250 + 5000 // cap + 2  # not one group per scaffold
    footer = store.file_metadata(f)
    ix = dict(zip(footer["index"]["contig"], zip(footer["index"]["row_group"], footer["index"]["offset"])))
    assert ix["big"][1] < cap // 4  # joins a group holding fewer than SHARED_ROWS rows at most
    stats = [md.row_group(i).column(0).statistics for i in range(md.num_row_groups)]
    big_only = [s for s in stats if s.min == s.max == "big"]
    assert len(big_only) >= 5000 // cap - 1  # pruned by chrom statistics for any other contig
    assert footer["rows"] == md.num_rows and footer["row_groups"] == md.num_row_groups


def test_writer_refuses_unordered_input(tmp_path):
    m = store.base_metadata(FEATURES, "segment_nt")
    with pytest.raises(GenosegError, match="not increasing"):
        with store.PredictionWriter(str(tmp_path / "x.parquet"), FEATURES, m) as w:
            w.write(np.arange(10), codes_for(range(10), 0), chrom="a")
            w.write(np.arange(5, 15), codes_for(range(10), 0), chrom="a")
    with pytest.raises(GenosegError, match="written again"):
        with store.PredictionWriter(str(tmp_path / "y.parquet"), FEATURES, m) as w:
            w.write(np.arange(10), codes_for(range(10), 0), chrom="a")
            w.write(np.arange(10), codes_for(range(10), 0), chrom="b")
            w.write(np.arange(20, 30), codes_for(range(10), 0), chrom="a")
    # an exception inside the writer's context leaves a file marked incomplete
    assert not store.chunk_file_ok(str(tmp_path / "y.parquet"), None, None)


def test_chunk_file_ok(tmp_path):
    f = write_chunk(tmp_path / "c.parquet", "p1", 3, [("a", np.arange(100))], reverse_complement=True)
    assert store.chunk_file_ok(f, "p1", 3)
    assert store.chunk_file_ok(f, "p1", 3, reverse_complement=True)
    assert not store.chunk_file_ok(f, "p1", 3, reverse_complement=False)
    assert not store.chunk_file_ok(f, "p2", 3) and not store.chunk_file_ok(f, "p1", 2)
    data = open(f, "rb").read()
    trunc = tmp_path / "t.parquet"
    trunc.write_bytes(data[:-100])
    assert not store.chunk_file_ok(str(trunc), "p1", 3)
    assert not store.chunk_file_ok(str(tmp_path / "missing.parquet"), "p1", 3)


@pytest.mark.parametrize("case", ["other_plan", "twice", "missing", "settings", "incomplete", "order", "rows"])
def test_collect_refuses_inconsistent_chunks(tmp_path, two_chunks, case):
    plan, files, _ = two_chunks
    expect = {"other_plan": "not from this plan", "twice": "given twice", "missing": "chunk 1",
              "settings": "different settings (compute_dtype)", "incomplete": "incomplete",
              "order": "out of order", "rows": "plan predicts"}[case]
    if case == "other_plan":
        files[1] = write_chunk(tmp_path / "x.parquet", "p2", 1, [("c", np.arange(700))])
    elif case == "twice":
        files.append(files[0])
    elif case == "missing":
        files = files[:1]
    elif case == "settings":
        m = store.base_metadata(FEATURES, "segment_nt", plan_id="p1", chunk=1, reverse_complement=False,
                                compute_dtype="bfloat16")
        files[1] = str(tmp_path / "x.parquet")
        with store.PredictionWriter(files[1], FEATURES, m) as w:
            w.write(np.arange(1205, 3005), codes_for(range(1800), 0), chrom="b")
            w.write(np.arange(700), codes_for(range(700), 0), chrom="c")
    elif case == "incomplete":
        m = store.base_metadata(FEATURES, "segment_nt", plan_id="p1", chunk=1)
        files[1] = str(tmp_path / "x.parquet")
        w = store.PredictionWriter(files[1], FEATURES, m)
        w.write(np.arange(700), codes_for(range(700), 0), chrom="c")
        w.close(complete=False)
    elif case == "order":
        files[1] = write_chunk(tmp_path / "x.parquet", "p1", 1, [("b", np.arange(0, 100)), ("c", np.arange(700))])
    elif case == "rows":
        files[1] = write_chunk(tmp_path / "x.parquet", "p1", 1, [("b", np.arange(1205, 3005)), ("c", np.arange(600))])
    with pytest.raises(GenosegError, match=expect.replace("(", r"\(").replace(")", r"\)")):
        store.write_dataset(str(tmp_path / "ds"), plan, files)
    assert not os.path.exists(tmp_path / "ds")


def test_old_hive_layout_gets_a_clear_error(tmp_path):
    old = tmp_path / "predictions"
    (old / "chrom=chr1").mkdir(parents=True)
    (old / "chrom=chr1" / "part-00000.parquet").write_bytes(b"")
    with pytest.raises(GenosegError, match="old Hive layout.*genoseg collect"):
        store.read_metadata(str(old))
    (old / "_genoseg.json").write_text(json.dumps({"features": FEATURES, "contigs": ["chr1"]}))
    with pytest.raises(GenosegError, match="older genoseg"):
        store.list_contigs(str(old))
    with pytest.raises(GenosegError, match="not found"):
        store.read_metadata(str(tmp_path / "nothing"))


def test_dataset_rewritten_in_place_is_read_afresh(tmp_path):
    ds = str(tmp_path / "ds")
    store.write_arrays(ds, FEATURES, "segment_nt", {"a": (np.arange(10), codes_for(range(10), 1))})
    assert store.list_contigs(ds) == ["a"]
    store.write_arrays(ds, FEATURES, "segment_nt", {"b": (np.arange(20), codes_for(range(20), 2))},
                       overwrite=True)
    assert store.list_contigs(ds) == ["b"]
    np.testing.assert_array_equal(next(store.iter_codes(ds, "b"))[1], codes_for(range(20), 2))


def test_region_reads_only_overlapping_row_groups(tmp_path, monkeypatch):
    pos = np.arange(0, 20_000, 2)  # one contig over 10 row groups of 1,000 rows
    f = write_chunk(tmp_path / "c.parquet", "p", 0, [("s", np.arange(7)), ("big", pos), ("t", np.arange(5))],
                    row_group_rows=1000)
    ds = str(tmp_path / "ds")
    store.write_dataset(ds, make_plan([("s", 7), ("big", pos.size), ("t", 5)], 1, "p"), [f])
    decoded = []
    orig = pq.ParquetFile.read_row_group
    monkeypatch.setattr(pq.ParquetFile, "read_row_group",
                        lambda self, i, *a, **k: decoded.append(i) or orig(self, i, *a, **k))
    store._reader.last = None
    full = np.concatenate([q for _, q in store.iter_codes(ds, "big")])
    for a, b in [(5001, 9000), (0, 1), (19_998, 30_000), (7000, 7000), (-5, 3), (25_000, 26_000)]:
        decoded.clear()
        store._reader.last = None
        got = list(store.iter_codes(ds, "big", start=a, end=b, batch_rows=300))
        want = (pos >= a) & (pos < b)
        p = np.concatenate([x for x, _ in got]) if got else np.zeros(0, np.int64)
        np.testing.assert_array_equal(p, pos[want])
        if got:
            np.testing.assert_array_equal(np.concatenate([q for _, q in got]), full[want])
        assert len(decoded) <= -(-want.sum() // 1000) + 1, (a, b, decoded)
    probs = np.concatenate([q for _, q in store.iter_predictions(ds, "t", start=2, end=4)])
    assert probs.shape == (2, 3)
