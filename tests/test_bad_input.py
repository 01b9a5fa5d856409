"""Bad input, unusual input and interrupted runs (issue 8): one test per case, named
after it. Each asserts what a user sees: exit status, the one error line naming the
file / contig / line / parameter and the fix, and what is (not) left on disk."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from fakes import FakeModel  # noqa: E402

from genoseg import store, windows  # noqa: E402
from genoseg.annotate import AnnotateOptions, annotate  # noqa: E402
from genoseg.cli import main  # noqa: E402
from genoseg.errors import GenosegError  # noqa: E402
from genoseg.fasta import Fasta  # noqa: E402
from genoseg.predict import predict_chunk  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TINY_NT = os.path.join(HERE, "data", "golden", "segment_nt_tiny")


def cli(*args):
    return main([str(a) for a in args])


def rand_seq(rng, n, alphabet="ACGT"):
    return "".join(rng.choice(list(alphabet), n))


def write_fasta(path, records, width=60):
    with open(path, "w", encoding="utf-8") as fh:
        for name, seq in records:
            fh.write(f">{name}\n")
            for i in range(0, len(seq), width):
                fh.write(seq[i:i + width] + "\n")
    return str(path)


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def fasta(tmp_path):
    rng = np.random.default_rng(1)
    return write_fasta(tmp_path / "g.fa", [("chr1", rand_seq(rng, 1500)), ("chr2", rand_seq(rng, 700))])


# ------------------------------------------------------------------------ options
@pytest.mark.parametrize("field, value, words", [
    ("batch_size", 0, ["--batch-size", "at least 1"]),
    ("windows_per_chunk", 0, ["--windows-per-chunk", "at least 1"]),
    ("window_length", 0, ["--window-length", "positive"]),
    ("overlap", 1.0, ["--overlap", "[0, 1)"]),
    ("min_contig_length", -5, ["--min-contig-length"]),
    ("compute_dtype", "float16", ["--compute-dtype"]),
    ("contig_regex", "chr(", ["--contig-regex", "chr("]),
    ("contigs", ["chr1", ""], ["--contigs"]),
])
def test_annotate_options_refuse_bad_values(field, value, words):
    with pytest.raises(GenosegError) as err:
        AnnotateOptions(**{field: value})
    for w in words:
        assert w in str(err.value)


def test_annotate_options_are_frozen_and_contigs_a_tuple():
    o = AnnotateOptions(contigs=["chr2", "chr1"])
    assert o.contigs == ("chr2", "chr1")
    with pytest.raises(Exception):
        o.batch_size = 3  # type: ignore[misc]


def test_annotate_cli_bad_batch_size_exits_2_before_writing(tmp_path, fasta, capsys):
    out = tmp_path / "out"
    assert cli("annotate", "--fasta", fasta, "--outdir", out, "--batch-size", "0") == 2
    assert "--batch-size" in one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_annotate_takes_options_object(tmp_path, fasta):
    t = annotate(fasta, str(tmp_path / "out"), FakeModel(window_length=96),
                 AnnotateOptions(windows_per_chunk=3, contigs=["chr2"], downstream=False))
    assert [s for s in t["steps"] if s["step"] == "plan"][0]["chunks"] >= 2
    assert os.listdir(tmp_path / "out" / "segment_nt" / "predictions")


# ------------------------------------------------------------------ contig names
# Ensembl-style numbers (``01`` must not collide with ``1``), a path-like name, and
# names whose escaped form would exceed the 255-byte file-name limit.
ODD_NAMES = ["1", "01", "MT", "chr1", "a/b", "s" * 300, "é" * 100]


@pytest.fixture(scope="module")
def odd_names_run(tmp_path_factory):
    """``genoseg annotate`` (plan, predict, collect, call, tracks, report) on contigs
    named :data:`ODD_NAMES`."""
    d = tmp_path_factory.mktemp("odd")
    rng = np.random.default_rng(0)
    fasta = write_fasta(d / "g.fa", [(n, rand_seq(rng, 150 + 30 * i)) for i, n in enumerate(ODD_NAMES)])
    out = d / "out"
    assert main(["annotate", "--fasta", fasta, "--model", TINY_NT, "--window-length", "96",
                 "--windows-per-chunk", "7", "--outdir", str(out)]) == 0
    return out / "segment_nt"


def test_numeric_contig_names_read_back_as_strings(odd_names_run):
    import duckdb
    import polars as pl
    import pyarrow as pa
    import pyarrow.dataset as ds

    pred = str(odd_names_run / "predictions")
    rows = store.read_metadata(pred)["rows"]
    assert store.list_contigs(pred) == ODD_NAMES
    # pyarrow: the README's filter works for every name, and "1" does not match "01"
    dset = ds.dataset(pred)
    assert dset.schema.field("chrom").type == pa.string()
    for name in ODD_NAMES:
        t = dset.to_table(filter=ds.field("chrom") == name, columns=["chrom", "pos"])
        assert t.num_rows == rows[name] > 0
        assert set(t.column("chrom").to_pylist()) == {name}
        expect = np.concatenate([p for p, _ in store.iter_codes(pred, name)])
        np.testing.assert_array_equal(np.sort(t.column("pos").to_numpy()), expect)
    # DuckDB
    con = duckdb.connect()
    glob = os.path.join(pred, "*.parquet")
    types = dict((r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{glob}')").fetchall())
    assert types["chrom"] == "VARCHAR" and types["pos"] == "BIGINT" and types["exon"] == "UTINYINT"
    got = dict(con.execute(f"SELECT chrom, count(*) FROM read_parquet('{glob}') GROUP BY chrom").fetchall())
    assert got == rows
    assert con.execute(f"SELECT count(*) FROM read_parquet('{glob}') WHERE chrom = '01'").fetchone()[0] == rows["01"]
    # polars
    lf = pl.scan_parquet(glob)
    assert lf.collect_schema()["chrom"] == pl.String
    got = dict(lf.group_by("chrom").len().collect().iter_rows())
    assert got == rows
    assert lf.filter(pl.col("chrom") == "é" * 100).select(pl.len()).collect().item() == rows["é" * 100]


def test_long_contig_names_work_end_to_end(odd_names_run):
    """A 300-byte name and 100 ``é`` (200 bytes; 900 once percent-encoded) through plan,
    predict, collect, call and tracks: no path is built from a contig name."""
    import pyBigWig

    calls_summary = json.load(open(odd_names_run / "calls" / "summary.json"))
    assert list(calls_summary["contigs"]) == ODD_NAMES
    plan = json.load(open(odd_names_run / "plan.json"))
    for f in os.listdir(odd_names_run / "tracks"):
        bw = pyBigWig.open(str(odd_names_run / "tracks" / f))
        assert list(bw.chroms()) == ODD_NAMES
        assert bw.chroms()["é" * 100] == next(c["length"] for c in plan["contigs"] if c["name"] == "é" * 100)
        bw.close()
    gff = (odd_names_run / "calls" / "calls.gff3").read_text(encoding="utf-8")
    assert f"##sequence-region {'s' * 300} 1 " in gff
    for dirpath, dirnames, filenames in os.walk(odd_names_run):
        for n in dirnames + filenames:
            assert len(n.encode()) < 100, n


# -------------------------------------------------------------- fragmented assemblies
def _engine(model, fasta, work, windows_per_chunk):
    """plan -> predict every chunk -> collect; returns (plan, dataset dir)."""
    g = windows.geometry_from_model(model)
    plan, chunks = windows.make_plan(fasta, g, os.path.join(work, "plan"), windows_per_chunk)
    files = []
    with Fasta(fasta, check_duplicates=False) as fa:
        for ch in chunks:
            files.append(os.path.join(work, f"c{ch['chunk']}.parquet"))
            predict_chunk(model, fa, ch, files[-1], batch_size=32)
    ds = os.path.join(work, "predictions")
    store.write_dataset(ds, plan, files)
    return plan, ds


def _dir_bytes(path):
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))


def test_fragmented_assembly_bounded_files_and_bytes_per_base(tmp_path, monkeypatch):
    """5,000 scaffolds: as many files as chunks (not contigs), row groups shared by small
    scaffolds, bytes per base within 1.5x of one contig of the same total length, and
    reading contig after contig decodes each row group once."""
    import pyarrow.parquet as pq

    rng = np.random.default_rng(8)
    lengths = rng.integers(400, 768, 5000)  # one window length (384 bp): full batches
    seq = rand_seq(rng, int(lengths.sum()))
    ends = np.cumsum(lengths)
    frag = write_fasta(tmp_path / "frag.fa", [(f"scaffold_{i}", seq[e - n:e]) for i, (n, e) in enumerate(zip(lengths, ends))])
    cont = write_fasta(tmp_path / "cont.fa", [("chr1", seq)])
    model = FakeModel(window_length=1536)
    plan_f, ds_f = _engine(model, frag, str(tmp_path / "f"), windows_per_chunk=4000)
    plan_c, ds_c = _engine(model, cont, str(tmp_path / "c"), windows_per_chunk=4000)
    meta_f, meta_c = store.read_metadata(ds_f), store.read_metadata(ds_c)
    assert len(meta_f["contigs"]) == 5000
    parts = sorted(f for f in os.listdir(ds_f) if f.endswith(".parquet"))
    assert len(parts) == plan_f["n_chunks"] <= 5
    row_groups = sum(pq.ParquetFile(os.path.join(ds_f, f)).metadata.num_row_groups for f in parts)
    rows_f = sum(meta_f["rows"].values())
    assert row_groups <= rows_f // store.SHARED_ROWS + 2 * len(parts)
    bpb_f = _dir_bytes(ds_f) / rows_f
    bpb_c = _dir_bytes(ds_c) / sum(meta_c["rows"].values())
    assert bpb_f <= 1.5 * bpb_c, (bpb_f, bpb_c)

    decoded = []
    orig = pq.ParquetFile.read_row_group
    monkeypatch.setattr(pq.ParquetFile, "read_row_group",
                        lambda self, i, *a, **k: decoded.append(i) or orig(self, i, *a, **k))
    store._reader.last = None
    n = 0
    for c in store.list_contigs(ds_f):
        for pos, codes in store.iter_codes(ds_f, c):
            n += pos.size
    assert n == rows_f and len(decoded) == row_groups
    decoded.clear()
    store._reader.last = None
    seen = [c for c, pos, _ in store.iter_dataset(ds_f, features=["exon"], batch_rows=100_000)]
    assert list(dict.fromkeys(seen)) == meta_f["contigs"] and len(decoded) == row_groups
