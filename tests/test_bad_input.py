"""Bad input, unusual input and interrupted runs (issue 8): one test per case, named
after it. Each asserts what a user sees: exit status, the one error line naming the
file / contig / line / parameter and the fix, and what is (not) left on disk."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from fakes import FakeModel  # noqa: E402

from genoseg.annotate import AnnotateOptions, annotate  # noqa: E402
from genoseg.cli import main  # noqa: E402
from genoseg.errors import GenosegError  # noqa: E402


def cli(*args):
    return main([str(a) for a in args])


def rand_seq(rng, n, alphabet="ACGT"):
    return "".join(rng.choice(list(alphabet), n))


def write_fasta(path, records, width=60):
    with open(path, "w") as fh:
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


# ------------------------------------------------------------- call, tracks, report
def small_predictions(outdir, contigs={"chr1": 400, "chr2": 300}):
    """A predictions dataset (store writer) with ``contigs`` name -> length, every base."""
    from genoseg import store
    from genoseg.outputs import escape_name

    feats = ["exon", "splice_donor"]
    ddir = store.dataset_dir(str(outdir), "segment_nt")
    rng = np.random.default_rng(3)
    for name, n in contigs.items():
        d = os.path.join(ddir, "chrom=" + escape_name(name))
        os.makedirs(d)
        w = store.PredictionWriter(os.path.join(d, "part-00000.parquet"), feats, store.base_metadata(feats, "segment_nt"))
        w.write(np.arange(n, dtype=np.int64), rng.integers(0, 256, (n, len(feats)), dtype=np.uint8))
        w.close()
    return ddir


def test_call_fai_shorter_than_predictions_is_refused(tmp_path, capsys):
    ddir = small_predictions(tmp_path / "out")
    fai = tmp_path / "g.fa.fai"
    fai.write_text("chr1\t400\t6\t60\t61\nchr2\t250\t420\t60\t61\n")
    assert cli("call", "--predictions", ddir, "--outdir", tmp_path / "calls", "--fai", fai) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "'chr2'" in line and "300" in line and "250" in line and str(fai) in line
    assert not (tmp_path / "calls").exists() and not [p for p in os.listdir(tmp_path) if "partial" in p]
    fai.write_text("chr1\t400\t6\t60\t61\nchr2\t300\t420\t60\t61\n")
    assert cli("call", "--predictions", ddir, "--outdir", tmp_path / "calls", "--fai", fai) == 0
    gff = (tmp_path / "calls" / "calls.gff3").read_text()
    assert "##sequence-region chr2 1 300\n" in gff


def test_call_fai_missing_a_contig_of_the_predictions_is_refused(tmp_path, capsys):
    ddir = small_predictions(tmp_path / "out")
    fai = tmp_path / "g.fa.fai"
    fai.write_text("chr1\t400\t6\t60\t61\n")
    assert cli("call", "--predictions", ddir, "--outdir", tmp_path / "calls", "--fai", fai) == 2
    assert "'chr2'" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "calls").exists()


def test_report_region_width_zero_is_refused(tmp_path, capsys):
    ddir = small_predictions(tmp_path / "out")
    bdir = os.path.dirname(ddir)
    assert cli("call", "--predictions", ddir, "--outdir", os.path.join(bdir, "calls")) == 0
    capsys.readouterr()
    assert cli("report", "--outdir", bdir, "--out", tmp_path / "r.html", "--region-width", 0) == 2
    assert "--region-width" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("cmd, flag", [("call", "--threads"), ("tracks", "--threads"), ("tracks", "--workers")])
def test_threads_zero_is_refused(tmp_path, capsys, cmd, flag):
    ddir = small_predictions(tmp_path / "out")
    assert cli(cmd, "--predictions", ddir, "--outdir", tmp_path / "o", flag, 0) == 2
    assert flag in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


def test_annotate_threads_zero_is_refused_before_work(tmp_path, fasta, capsys):
    assert cli("annotate", "--fasta", fasta, "--outdir", tmp_path / "out", "--threads", 0) == 2
    assert "--threads" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()
    with pytest.raises(GenosegError, match="--threads"):
        AnnotateOptions(threads=0)
