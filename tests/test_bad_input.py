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
