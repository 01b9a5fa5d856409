"""Bad input, unusual input and interrupted runs (issue 8): one test per case, named
after it. Each asserts what a user sees: exit status, the one error line naming the
file / contig / line / parameter and the fix, and what is (not) left on disk."""

from __future__ import annotations

import json
import logging
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from fakes import FakeModel  # noqa: E402
import seqdata  # noqa: E402
from seqdata import write_fasta  # noqa: E402

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
    return seqdata.rand_seq(rng, n, alphabet)


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
    ("overlap", 1.0, ["--overlap", "between 0 and 0.9"]),
    ("overlap", 0.9999, ["--overlap", "between 0 and 0.9"]),
    ("chunk_seconds", 0, ["--chunk-seconds", "positive"]),
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


# --------------------------------------------------------------- helpers for runs
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=os.path.join(REPO, "src"))


def genoseg_cmd(*args):
    return [sys.executable, "-m", "genoseg.cli", *map(str, args)]


def listing(root) -> list[str]:
    """Every path under ``root`` (relative), hidden ones included."""
    out = []
    for d, dirs, files in os.walk(root):
        out += [os.path.relpath(os.path.join(d, n), root) for n in dirs + files]
    return sorted(out)


def outputs_bytes(bdir) -> dict:
    """Contents of every output file except the two that record times (and the seconds
    and the output path in the calls summary)."""
    out = {}
    for rel in listing(bdir):
        p = os.path.join(bdir, rel)
        if os.path.isfile(p) and rel not in ("report.html", "timings.json"):
            out[rel] = open(p, "rb").read()
        if rel == "calls/summary.json":
            d = json.loads(out[rel])
            assert d.pop("dataset") == os.path.join(os.path.abspath(bdir), "predictions")
            d.pop("seconds")
            out[rel] = d
    return out


def fake_run(fasta, out, **kw):
    return annotate(fasta, str(out), FakeModel(window_length=96), AnnotateOptions(windows_per_chunk=3, **kw))


TRUTH = "##gff-version 3\nchr1\ttest\texon\t101\t300\t.\t+\t.\tID=e1\nchr2\ttest\texon\t11\t90\t.\t-\t.\tID=e2\n"


# ------------------------------------------------------- fail before the compute
def test_truth_malformed_fails_before_compute_and_writes_nothing(tmp_path, fasta, capsys):
    truth = tmp_path / "truth.gff3"
    truth.write_text(TRUTH + "chr1\ttest\texon\tten\t20\t.\t+\t.\n")
    out = tmp_path / "out"
    assert cli("annotate", "--fasta", fasta, "--truth", truth, "--outdir", out) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "truth.gff3:4" in line and "integers" in line
    assert not out.exists()


def test_truth_contigs_not_in_fasta_fail_before_compute(tmp_path, fasta, capsys):
    truth = tmp_path / "truth.gff3"
    truth.write_text(TRUTH.replace("chr1", "1").replace("chr2", "2"))
    out = tmp_path / "out"
    with pytest.raises(GenosegError, match="contig names must match") as err:
        fake_run(fasta, out, truth=str(truth))
    assert "'1'" in str(err.value) and "'chr1'" in str(err.value)
    assert not out.exists()


def test_truth_without_features_refused(tmp_path, fasta):
    truth = tmp_path / "truth.gff3"
    truth.write_text("##gff-version 3\n")
    with pytest.raises(GenosegError, match="no features"):
        fake_run(fasta, tmp_path / "out", truth=str(truth))


@pytest.mark.parametrize("cmd", ["annotate", "plan"])
def test_outdir_is_a_file(tmp_path, fasta, capsys, cmd):
    out = tmp_path / "out"
    out.write_text("I am a file")
    extra = ["--backbone", "segment_nt"] if cmd == "plan" else []
    assert cli(cmd, "--fasta", fasta, "--outdir", out, *extra) == 2
    err = capsys.readouterr().err
    assert "is not a directory" in one_error_line(err) and "plan: chr1" not in err  # before the scan
    assert out.read_text() == "I am a file"


def test_outdir_below_a_file(tmp_path, fasta, capsys):
    (tmp_path / "f").write_text("x")
    assert cli("annotate", "--fasta", fasta, "--outdir", tmp_path / "f" / "out") == 2
    assert "is a file" in one_error_line(capsys.readouterr().err)


def as_unprivileged(argv):
    """``argv`` run as an ordinary user (root writes anywhere, so a permission test as
    root runs its command as 'nobody'); skip where that is impossible."""
    import shutil
    import subprocess

    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: cannot test permissions")
        drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        probe = subprocess.run([*drop, sys.executable, "-c", "import genoseg.cli"], capture_output=True,
                               text=True, env=ENV, timeout=120)
        if probe.returncode:
            pytest.skip(f"user 'nobody' cannot run this checkout: {probe.stderr[-300:]}")
        argv = [*drop, *argv]
    return subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=300)


@pytest.fixture
def shared_dir():
    """A directory an unprivileged user can read (pytest's tmp_path is private to root)."""
    import shutil
    import tempfile

    d = tempfile.mkdtemp(prefix="genoseg-test-")
    os.chmod(d, 0o755)
    yield d
    for root, dirs, _ in os.walk(d):
        for n in dirs:
            os.chmod(os.path.join(root, n), 0o755)
    shutil.rmtree(d, ignore_errors=True)


def test_outdir_not_writable(shared_dir):
    rng = np.random.default_rng(2)
    fa = write_fasta(os.path.join(shared_dir, "g.fa"), [("chr1", rand_seq(rng, 300))])
    os.chmod(fa, 0o644)
    ro = os.path.join(shared_dir, "ro")
    os.mkdir(ro, 0o555)
    os.chmod(ro, 0o555)
    res = as_unprivileged(genoseg_cmd("annotate", "--fasta", fa, "--outdir", os.path.join(ro, "out")))
    assert res.returncode == 2, res.stderr[-2000:]
    line = one_error_line(res.stderr)
    assert "--outdir" in line and "cannot write" in line and "Permission denied" in line
    assert os.listdir(ro) == []


def test_existing_outputs_refused_before_compute(tmp_path, fasta):
    fake_run(fasta, tmp_path / "out", downstream=False)
    before = outputs_bytes(tmp_path / "out" / "segment_nt")
    with pytest.raises(GenosegError, match="already exists"):
        fake_run(fasta, tmp_path / "out", batch_size=3)
    assert outputs_bytes(tmp_path / "out" / "segment_nt") == before
    assert not [p for p in listing(tmp_path / "out") if p.startswith(".")]  # no work dir left


def test_overwrite_without_truth_leaves_no_old_evaluation(tmp_path, fasta):
    truth = tmp_path / "truth.gff3"
    truth.write_text(TRUTH)
    bdir = tmp_path / "out" / "segment_nt"
    fake_run(fasta, tmp_path / "out", truth=str(truth))
    assert (bdir / "evaluation.tsv").exists()
    fake_run(fasta, tmp_path / "out", overwrite=True, contigs=["chr2"])
    assert not (bdir / "evaluation.tsv").exists()
    assert "chr1" not in (bdir / "plan.json").read_text().split('"skipped')[0]
    assert not [p for p in listing(tmp_path / "out") if p.startswith(".")]


def test_overwrite_that_fails_keeps_every_old_output(tmp_path, fasta):
    fake_run(fasta, tmp_path / "out")
    bdir = tmp_path / "out" / "segment_nt"
    before = outputs_bytes(bdir)
    with pytest.raises(GenosegError, match="no contigs selected|not in the FASTA"):
        fake_run(fasta, tmp_path / "out", overwrite=True, contigs=["chrZ"])
    assert outputs_bytes(bdir) == before
    assert listing(tmp_path / "out") == ["segment_nt"] + ["segment_nt/" + p for p in listing(bdir)]


# ------------------------------------------------------------- FASTA as users have it
LAYOUTS = {
    # name: (file content, words the one error line must hold)
    "header_only_record_at_end": (">chr1\nACGTACGT\nACGT\n>chr2\n", ["'chr2'", "line 4", "no sequence", "delete"]),
    "only_a_header": (">chr1\n", ["'chr1'", "line 1", "no sequence"]),
    "cr_only_line_endings": (">chr1\rACGTACGT\rACGT\r", ["carriage returns", "genoseg prepare"]),
    "blank_line_inside_record": (">chr1\nACGTACGT\n\nACGT\n>chr2\nACGT\n", ["'chr1'", "blank line 3", "remove"]),
    "ragged_line_widths": (">chr1\nACGTACGT\nACG\nACGTA\n", ["'chr1'", "line 3", "3 bases", "8", "same length"]),
    "longer_line_after_shorter": (">c\nACGT\nACGTACGT\n", ["'c'", "line 3", "8 bases", "4"]),
    "whitespace_in_sequence": (">chr1\nACGT ACGT\nACGT\n", ["'chr1'", "line 2", "column 5", "whitespace"]),
    "sequence_before_header": ("ACGT\n>chr1\nACGT\n", ["line 1", "before the first"]),
}


@pytest.mark.parametrize("case", sorted(LAYOUTS))
def test_fasta_layout_errors_name_file_contig_line_and_fix(tmp_path, capsys, case):
    text, words = LAYOUTS[case]
    path = tmp_path / "bad.fa"
    path.write_bytes(text.encode())
    out = tmp_path / "out"
    assert cli("annotate", "--fasta", path, "--outdir", out) == 2
    line = one_error_line(capsys.readouterr().err)
    for w in ["bad.fa"] + words:
        assert w in line, (w, line)
    assert "fai_build_core" not in line and "Could not build" not in line
    assert not out.exists() and sorted(os.listdir(tmp_path)) == ["bad.fa"]  # no index, no outdir


def test_fasta_layouts_faidx_reads_are_accepted(tmp_path):
    from genoseg.fasta import Fasta

    seq = "ACGTACGTAC" * 13
    crlf = ">a\r\n" + "\r\n".join(seq[i:i + 60] for i in range(0, len(seq), 60)) + "\r\n"
    lines = "\n".join(seq[i:i + 60] for i in range(0, len(seq), 60))
    blank_between = ">a\n" + lines + "\n\n\n>b\nACGT\n"
    no_final_newline = ">a\n" + lines
    for i, text in enumerate([crlf, blank_between, no_final_newline]):
        p = tmp_path / f"ok{i}.fa"
        p.write_bytes(text.encode())
        with Fasta(str(p)) as fa:
            assert fa.contigs[0].length == len(seq)
            assert fa.fetch_bytes("a", 0, len(seq)).tobytes().decode() == seq


def test_fasta_empty_record_is_listed_as_skipped(tmp_path, fasta):
    rng = np.random.default_rng(4)
    path = write_fasta(tmp_path / "e.fa", [("chr1", rand_seq(rng, 500)), ("chrEmpty", ""),
                                           ("chr2", rand_seq(rng, 400))])
    t = fake_run(path, tmp_path / "out", downstream=False)
    plan = json.load(open(tmp_path / "out" / "segment_nt" / "plan.json"))
    skipped = {s["contig"]: s["reason"] for s in plan["skipped"] if "contig" in s}
    assert skipped.get("chrEmpty") == "empty sequence"
    assert [c["name"] for c in plan["contigs"]] == ["chr1", "chr2"]
    assert t["steps"]


def copy_to(src, dst):
    import shutil

    shutil.copy(src, dst)
    return str(dst)


def test_read_only_fasta_directory_index_built_elsewhere(shared_dir):
    """A shared reference directory users cannot write: the index is built in the run's
    work area, nothing is written beside the FASTA, the run succeeds."""
    rng = np.random.default_rng(5)
    ref = os.path.join(shared_dir, "ref")
    os.mkdir(ref)
    fa = write_fasta(os.path.join(ref, "g.fa"), [("chr1", rand_seq(rng, 3000))])
    os.chmod(fa, 0o644)
    os.chmod(ref, 0o555)
    out = os.path.join(shared_dir, "out")
    os.mkdir(out)
    os.chmod(out, 0o777)
    res = as_unprivileged(genoseg_cmd("annotate", "--fasta", fa, "--outdir", out, "--windows-per-chunk", 2))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "read-only directory" in res.stderr
    assert os.listdir(ref) == ["g.fa"]
    assert listing(out)[0] == "segment_nt" and not [p for p in listing(out) if p.startswith(".")]


def test_fai_option_reads_an_index_kept_elsewhere(tmp_path, fasta):
    import pysam

    src = copy_to(fasta, tmp_path / "ref.fa")
    fai = str(tmp_path / "elsewhere.fai")
    pysam.faidx(src, "--fai-idx", fai)
    fake_run(src, tmp_path / "out", fai=fai, downstream=False)
    assert not os.path.exists(src + ".fai")
    assert cli("plan", "--fasta", src, "--fai", str(tmp_path / "nope.fai"), "--backbone", "segment_nt",
               "--outdir", tmp_path / "plan") == 2


def stale_index_case(tmp_path, change: str, bgzip: bool):
    """A FASTA whose index was made from an earlier version of it and is newer."""
    import pysam
    import time

    rng = np.random.default_rng(6)
    a, b = rand_seq(rng, 30_000), rand_seq(rng, 5_000)
    path = tmp_path / "g.fa"
    first = [("chr1", a[:20_000]), ("chr2", b)] if change == "shorter" else [("chr1", a), ("chr2", b)]
    write_fasta(path, first)
    final = str(path)
    if bgzip:
        final = str(tmp_path / "g.fa.gz")
        pysam.tabix_compress(str(path), final, force=True)
    pysam.faidx(final)
    index = open(final + ".fai").read()
    then = [("chr1", a), ("chr2", b)] if change == "shorter" else [("chr1", a), ("chrB", b)]
    write_fasta(path, then)
    if bgzip:
        pysam.tabix_compress(str(path), final, force=True)
        pysam.faidx(final)  # a matching .gzi; only the .fai is stale
    time.sleep(0.01)
    with open(final + ".fai", "w") as fh:
        fh.write(index)
    os.utime(final + ".fai", (time.time() + 5, time.time() + 5))  # newer than the FASTA
    return final


@pytest.mark.parametrize("bgzip", [False, True], ids=["plain", "bgzip"])
@pytest.mark.parametrize("change", ["shorter", "renamed"])
def test_stale_fai_newer_than_fasta_is_refused(tmp_path, capsys, change, bgzip):
    final = stale_index_case(tmp_path, change, bgzip)
    out = tmp_path / "out"
    assert cli("annotate", "--fasta", final, "--outdir", out, "--windows-per-chunk", 50) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "does not match" in line and ".fai" in line and "samtools faidx" in line
    assert ("'chr1'" if change == "shorter" else "'chr2'") in line
    assert not out.exists()


# ------------------------------------------------------------ resume after a kill
@pytest.fixture(scope="module")
def sim_genome(tmp_path_factory):
    """A simulated genome for the demo model: ~60 kb, with --windows-per-chunk 2 about
    40 chunks, so a run can be stopped with many chunks done and many to go."""
    d = tmp_path_factory.mktemp("sim")
    assert main(["simulate", "--seed", "11", "--length-scale", "0.12", "--out", str(d)]) == 0
    return str(d / "genome.fa")


RUN_ARGS = ("--windows-per-chunk", "2", "--batch-size", "4")


@pytest.fixture(scope="module")
def uninterrupted(sim_genome, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "out"
    assert main(["annotate", "--fasta", sim_genome, "--outdir", str(out), *RUN_ARGS]) == 0
    return outputs_bytes(out / "segment_nt")


def start_annotate(fasta, out, *extra):
    import subprocess

    return subprocess.Popen(genoseg_cmd("annotate", "--fasta", fasta, "--outdir", out, *RUN_ARGS, *extra),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV,
                            start_new_session=True)


def chunk_files(out) -> list[str]:
    d = os.path.join(out, ".genoseg-work-segment_nt", "chunks")
    return sorted(f for f in os.listdir(d) if f.endswith(".parquet") and not f.startswith(".")) \
        if os.path.isdir(d) else []


def wait_for_chunks(proc, out, n, timeout=240.0):
    import time

    t0 = time.time()
    while len(chunk_files(out)) < n:
        assert proc.poll() is None, f"annotate ended before {n} chunks: {proc.stderr.read()[-2000:]}"
        assert time.time() - t0 < timeout, "no progress"
        time.sleep(0.02)


def predict_step(out) -> dict:
    t = json.load(open(os.path.join(out, "segment_nt", "timings.json")))
    return next(s for s in t["steps"] if s["step"] == "predict")


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM"])
def test_kill_mid_predict_then_rerun_resumes_bit_identical(tmp_path, sim_genome, uninterrupted, sig):
    import signal

    out = str(tmp_path / "out")
    proc = start_annotate(sim_genome, out)
    wait_for_chunks(proc, out, 6)
    os.killpg(proc.pid, getattr(signal, sig))
    _, err = proc.communicate(timeout=120)
    if sig == "SIGTERM":
        assert proc.returncode == 143, err[-2000:]
        assert "Traceback" not in err and "stopped by SIGTERM" in err
    else:
        assert proc.returncode == -signal.SIGKILL
    finished = len(chunk_files(out))
    assert finished >= 6
    # only what a rerun can use is left: the work directory (no outputs, no temporaries)
    assert os.listdir(out) == [".genoseg-work-segment_nt"]
    if sig == "SIGTERM":
        assert not [p for p in listing(out) if p.endswith(".partial")]

    assert main(["annotate", "--fasta", sim_genome, "--outdir", out, *RUN_ARGS]) == 0
    st = predict_step(out)
    assert st["chunks_reused"] == finished and st["chunks_computed"] > 0
    assert outputs_bytes(os.path.join(out, "segment_nt")) == uninterrupted
    assert os.listdir(out) == ["segment_nt"]
    assert not [p for p in listing(out) if os.path.basename(p).startswith(".")]


class CrashingModel(FakeModel):
    """Fails on its ``n``-th batch: a run that dies mid-predict (in process, fast)."""

    def __init__(self, n, **kw):
        super().__init__(**kw)
        self.calls, self.n = 0, n

    def predict_tokens(self, tokens):
        self.calls += 1
        if self.calls == self.n:
            raise RuntimeError("device lost")
        return super().predict_tokens(tokens)


def crash_then(fasta, out, n=12, **kw):
    with pytest.raises(RuntimeError, match="device lost"):
        annotate(fasta, str(out), CrashingModel(n, window_length=96),
                 AnnotateOptions(windows_per_chunk=3, batch_size=2, downstream=False))
    finished = len(chunk_files(out))
    assert finished >= 2 and os.listdir(out) == [".genoseg-work-segment_nt"]
    t = annotate(fasta, str(out), CrashingModel(0, window_length=96),  # (the same model, not crashing)
                 AnnotateOptions(windows_per_chunk=3, downstream=False, **{"batch_size": 2, **kw}))
    return finished, next(s for s in t["steps"] if s["step"] == "predict")


def test_failed_run_keeps_finished_chunks_and_rerun_reuses_them(tmp_path, fasta):
    finished, st = crash_then(fasta, tmp_path / "out")
    assert st["chunks_reused"] == finished and st["chunks_computed"] > 0
    assert os.listdir(tmp_path / "out") == ["segment_nt"]


def test_rerun_with_no_resume_recomputes(tmp_path, fasta):
    _, st = crash_then(fasta, tmp_path / "out", resume=False)
    assert st["chunks_reused"] == 0


def test_rerun_with_other_settings_does_not_reuse_chunks(tmp_path, fasta):
    _, st = crash_then(fasta, tmp_path / "out", batch_size=3)  # batch shape can change the bits
    assert st["chunks_reused"] == 0
    _, st = crash_then(fasta, tmp_path / "out2", reverse_complement=True)
    assert st["chunks_reused"] == 0


@pytest.mark.parametrize("when", ["start-up", "plan", "predict"])
def test_ctrl_c_exits_130(tmp_path, sim_genome, when):
    import signal
    import time

    out = str(tmp_path / "out")
    proc = start_annotate(sim_genome, out)
    if when == "start-up":
        time.sleep(0.3)
    elif when == "plan":
        t0 = time.time()
        while not os.path.isdir(os.path.join(out, ".genoseg-work-segment_nt")) and time.time() - t0 < 60:
            time.sleep(0.005)
    else:
        wait_for_chunks(proc, out, 2)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    assert not os.path.exists(out) or os.listdir(out) == [".genoseg-work-segment_nt"]
    assert not [p for p in listing(tmp_path) if p.endswith(".partial")]


def test_second_run_on_the_same_outdir_is_refused_while_one_runs(tmp_path, fasta):
    import fcntl

    work = tmp_path / "out" / ".genoseg-work-segment_nt"
    work.mkdir(parents=True)
    with open(work / "lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        with pytest.raises(GenosegError, match="another genoseg annotate"):
            fake_run(fasta, tmp_path / "out")
    fake_run(fasta, tmp_path / "out")  # once the lock is free, a run goes through


def test_partial_files_of_a_killed_writer_are_removed_by_the_next(tmp_path, fasta):
    """A kill during `genoseg tracks` (or report) leaves its temporary; the next run of
    the same step removes it (it carries the dead writer's host and pid)."""
    import socket
    import subprocess

    from genoseg.outputs import escape_name

    fake_run(fasta, tmp_path / "out", downstream=False)
    bdir = tmp_path / "out" / "segment_nt"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tag = f"{escape_name(socket.gethostname())}-{dead.pid}"
    orphan = bdir / f".tracks.{tag}.k2j3h4.partial"
    orphan.mkdir()
    (orphan / "exon.bw").write_bytes(b"half")
    alive = bdir / f".tracks.{escape_name(socket.gethostname())}-{os.getpid()}.zzz.partial"
    alive.mkdir()  # a writer still running (this process): left alone
    assert cli("tracks", "--predictions", bdir / "predictions", "--outdir", bdir / "tracks") == 0
    assert not orphan.exists() and alive.exists()
    assert (bdir / "tracks" / "exon.bw").exists()


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


# ------------------------------------------------------------------ plan options and files
@pytest.mark.parametrize("args, words", [
    (["--overlap", "0.9999"], ["--overlap 0.9999", "between 0 and 0.9"]),
    (["--overlap", "-0.1"], ["--overlap -0.1", "between 0 and 0.9"]),
    (["--window-length", "0"], ["--window-length 0", "positive multiple of 24", "default, 30000"]),
    (["--window-length", "100"], ["--window-length 100", "multiple of 24"]),
    (["--target-chunks", "0"], ["--target-chunks 0", "at least 1"]),
    (["--chunk-seconds", "0"], ["--chunk-seconds 0", "positive number of seconds"]),
])
def test_plan_overlap_0_9999_and_window_length_0_refused_before_writing(tmp_path, fasta, capsys, args, words):
    """--overlap 0.9999 used to give 42,322 windows for 50 kb; --window-length 0 silently
    meant the default."""
    out = tmp_path / "plan"
    assert cli("plan", "--fasta", fasta, "--backbone", "segment_nt", "--outdir", out, *args) == 2
    line = one_error_line(capsys.readouterr().err)
    for w in words:
        assert w in line, line
    assert not out.exists()


def test_window_length_0_refused_with_a_model_object():
    with pytest.raises(GenosegError, match="--window-length 0"):
        windows.geometry_from_model(FakeModel(window_length=96), window_length=0)


@pytest.mark.parametrize("damage", ["plan_without_contigs", "plan_contig_without_length",
                                   "chunk_without_parts", "chunk_part_without_compute"])
def test_plan_file_missing_keys_named_not_keyerror(tmp_path, fasta, capsys, damage):
    plan_dir = tmp_path / "plan"
    assert cli("plan", "--fasta", fasta, "--backbone", "segment_nt", "--window-length", 96,
               "--target-chunks", 2, "--outdir", plan_dir) == 0
    plan_path, chunk_path = plan_dir / "plan.json", plan_dir / "chunks" / "chunk_00000.json"
    plan, chunk = json.loads(plan_path.read_text()), json.loads(chunk_path.read_text())
    if damage == "plan_without_contigs":
        del plan["contigs"]
        key, path = "'contigs'", plan_path
    elif damage == "plan_contig_without_length":
        del plan["contigs"][1]["length"]
        key, path = "'length'", plan_path
    elif damage == "chunk_without_parts":
        del chunk["parts"]
        key, path = "'parts'", chunk_path
    else:
        del chunk["parts"][0]["compute"]
        key, path = "'compute'", chunk_path
    plan_path.write_text(json.dumps(plan))
    chunk_path.write_text(json.dumps(chunk))
    capsys.readouterr()
    if path == plan_path:
        rc = cli("collect", "--plan", plan_path, "--chunks", tmp_path / "none.parquet", "--outdir", tmp_path / "o")
    else:
        rc = cli("predict", "--fasta", fasta, "--model", TINY_NT, "--chunk", chunk_path, "--out", tmp_path / "c.parquet")
    assert rc == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(path) in line and key in line and "genoseg plan" in line, line
    assert not (tmp_path / "o").exists() and not (tmp_path / "c.parquet").exists()


def test_empty_fasta_record_shown_as_skipped_in_the_report(tmp_path):
    """The plan lists it (test_fasta_empty_record_is_listed_as_skipped); so does the report."""
    rng = np.random.default_rng(3)
    fa = tmp_path / "g.fa"
    fa.write_text(f">chr1\n{rand_seq(rng, 600)}\n>hollow some description\n>chr2\n{rand_seq(rng, 400)}\n")
    annotate(str(fa), str(tmp_path / "out"), FakeModel(window_length=96), AnnotateOptions(windows_per_chunk=4))
    plan = json.loads((tmp_path / "out" / "segment_nt" / "plan.json").read_text())
    assert {"name": "hollow", "length": 0, "reason": "empty sequence"} in plan["skipped_contigs"]
    html = (tmp_path / "out" / "segment_nt" / "report.html").read_text()
    skipped = html[html.index("Skipped</h2>"):]
    assert "hollow" in skipped and "empty sequence" in skipped


def test_missing_chunk_file_named_once(tmp_path, fasta, capsys):
    """The message said "chunk file file <path> does not exist"."""
    missing = tmp_path / "chunk_00007.json"
    assert cli("predict", "--fasta", fasta, "--model", TINY_NT, "--chunk", missing, "--out", tmp_path / "c.parquet") == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"chunk file {missing} does not exist" in line and "file file" not in line
    assert cli("collect", "--plan", tmp_path / "plan.json", "--chunks", missing, "--outdir", tmp_path / "o") == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"plan file {tmp_path / 'plan.json'} does not exist" in line and "file file" not in line


# ------------------------------------------------------- published checkpoints as they come
def test_rescaling_beyond_30kb_follows_the_authors_recipe():
    """Up to 30 kb the training factor; beyond it (L/6 + 1)/2048, counting the CLS token
    as the authors' notebook does (6669/2048 at 40,008 bp), applied per window length."""
    from genoseg.models import load_model
    from genoseg.models.segment_nt import rescaling_factor_for_length

    assert rescaling_factor_for_length(40_008) == 6669 / 2048
    assert rescaling_factor_for_length(30_000, training_factor=2.5) == 2.5
    assert rescaling_factor_for_length(30_024, training_factor=2.5) == 5005 / 2048
    model = load_model(TINY_NT)
    training = model.rescaling_factor
    assert model.rescaling_factor_at(1_536) == model.rescaling_factor_at(30_000) == training
    assert model.rescaling_factor_at(40_008) == 6669 / 2048
    seq = rand_seq(np.random.default_rng(9), 30_024)  # 5,005 tokens: just past the training length
    auto = model.predict([seq])
    fixed = load_model(TINY_NT, rescaling_factor=5005 / 2048).predict([seq])
    np.testing.assert_array_equal(auto, fixed)
    short = seq[:1_536]
    np.testing.assert_array_equal(model.predict([short]),
                                  load_model(TINY_NT, rescaling_factor=training).predict([short]))


def copy_model(dst, edit_hp=None):
    import shutil

    shutil.copytree(TINY_NT, dst)
    if edit_hp is not None:
        p = os.path.join(dst, "jax_model", "hyperparams.json")
        hp = json.load(open(p))
        edit_hp(hp)
        json.dump(hp, open(p, "w"))
    return str(dst)


@pytest.mark.parametrize("case", ["learned", "missing"])
def test_positional_embedding_not_null_is_refused_naming_the_key(tmp_path, fasta, capsys, case):
    model = copy_model(tmp_path / "m", (lambda hp: hp.update(positional_embedding="learned")) if case == "learned"
                       else (lambda hp: hp.pop("positional_embedding")))
    out = tmp_path / "out"
    assert cli("annotate", "--fasta", fasta, "--model", model, "--outdir", out) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "hyperparams.json" in line and "positional_embedding" in line and "'learned'" in line
    assert not out.exists()


@pytest.mark.parametrize("case", ["header_only_record_at_end", "cr_only_line_endings", "blank_line_inside_record",
                                  "ragged_line_widths", "longer_line_after_shorter"])
def test_prepare_fixes_the_layouts_faidx_refuses(tmp_path, case):
    """The fix the layout errors name: `genoseg prepare` writes an indexable FASTA with
    the same sequences (records without sequence left out)."""
    import gzip

    text, _ = LAYOUTS[case]
    src = tmp_path / "bad.fa.gz"
    with gzip.open(src, "wb") as fh:
        fh.write(text.encode())
    expect = {}
    for rec in text.replace("\r", "\n").split(">")[1:]:
        name, _, seq = rec.partition("\n")
        if seq.replace("\n", ""):
            expect[name.split()[0]] = seq.replace("\n", "")
    assert cli("prepare", "--fasta", src, "--out", tmp_path / "fixed.fa", "--line-width", 4) == 0
    with Fasta(str(tmp_path / "fixed.fa")) as fa:
        got = {c.name: fa.fetch_bytes(c.name, 0, c.length).tobytes().decode() for c in fa.contigs}
    assert got == expect
    assert all(len(ln) <= 4 for ln in (tmp_path / "fixed.fa").read_text().splitlines() if not ln.startswith(">"))


def test_evaluate_unknown_feature_named_with_the_known_ones(tmp_path, fasta, capsys):
    truth = tmp_path / "truth.gff3"
    truth.write_text(TRUTH)
    fake_run(fasta, tmp_path / "out")
    calls = tmp_path / "out" / "segment_nt" / "calls"
    assert cli("evaluate", "--truth", truth, "--calls", calls, "--features", "exon,exxon") == 2
    line = one_error_line(capsys.readouterr().err)
    assert "'exxon'" in line and "--features" in line and "intron" in line and "'exon'" not in line
    assert cli("evaluate", "--truth", truth, "--calls", calls, "--features", "exon") == 0


# ------------------------------------------------------------- call, tracks, report
def small_predictions(outdir, contigs={"chr1": 400, "chr2": 300}):
    """A predictions dataset (the store's writer) with ``contigs`` name -> length, every base."""
    from genoseg import store

    rng = np.random.default_rng(3)
    ddir = store.dataset_dir(str(outdir), "segment_nt")
    # quiet: the root log handler may still hold a previous test's closed capture stream
    lg = logging.getLogger("genoseg")
    level, lg.level = lg.level, logging.WARNING
    try:
        store.write_arrays(ddir, ["exon", "splice_donor"], "segment_nt",
                           {name: (np.arange(n, dtype=np.int64), rng.integers(0, 256, (n, 2), dtype=np.uint8))
                            for name, n in contigs.items()})
    finally:
        lg.setLevel(level)
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


def test_multi_species_taken_from_provenance_not_the_folder_name(tmp_path, caplog):
    """A folder named by commit hash holding what fetch-model fetched from
    InstaDeepAI/segment_nt_multi_species is that backbone; a folder whose name says
    multi_species but whose provenance says segment_nt is segment_nt."""
    from genoseg.models import detect_backbone

    by_hash = copy_model(tmp_path / "3dcd14d0c1f5a1e2")
    (tmp_path / "3dcd14d0c1f5a1e2" / "fetch.json").write_text(
        json.dumps({"repo": "InstaDeepAI/segment_nt_multi_species", "revision": "main"}))
    assert detect_backbone(by_hash) == "segment_nt_multi_species"
    misleading = copy_model(tmp_path / "segment_nt_multi_species_old")
    (tmp_path / "segment_nt_multi_species_old" / "fetch.json").write_text(
        json.dumps({"repo": "InstaDeepAI/segment_nt", "revision": "main"}))
    assert detect_backbone(misleading) == "segment_nt"
    bare = copy_model(tmp_path / "my_segment_nt_multi_species")
    with caplog.at_level("WARNING"):
        assert detect_backbone(bare) == "segment_nt_multi_species"
    assert "directory name" in caplog.text


# ------------------------------------------------------------------ signals in worker processes
WORKER_SCRIPT = '''
import os, sys, time
from genoseg import parallel, signals

def slow(i, marker_dir):
    open(os.path.join(marker_dir, f"started-{i}-{os.getpid()}"), "w").close()
    time.sleep(60)
    return i

if __name__ == "__main__":
    signals.install()
    try:
        parallel.run_jobs(slow, [(0, sys.argv[1]), (1, sys.argv[1])], 2)
    except signals.Interrupted as exc:
        print(f"stopped: {exc}", file=sys.stderr)
        sys.exit(exc.exit_status)
'''


@pytest.mark.parametrize("sig, status", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_stops_worker_processes_at_once_without_tracebacks(tmp_path, sig, status):
    """Ctrl-C reaches every process of the group; a scheduler's SIGTERM every process of
    the job: the parent ends the run (its exit status), the workers go with it, and no
    worker prints a traceback of its own."""
    import signal
    import subprocess
    import time

    script = tmp_path / "run_jobs_script.py"
    script.write_text(WORKER_SCRIPT)
    markers = tmp_path / "markers"
    markers.mkdir()
    proc = subprocess.Popen([sys.executable, str(script), str(markers)], stderr=subprocess.PIPE, text=True,
                            env=ENV, start_new_session=True)
    t0 = time.time()
    while len(os.listdir(markers)) < 2:
        assert proc.poll() is None and time.time() - t0 < 60, proc.stderr.read()
        time.sleep(0.02)
    pids = [int(n.rsplit("-", 1)[1]) for n in os.listdir(markers)]
    t1 = time.time()
    os.killpg(proc.pid, getattr(signal, sig))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == status, err
    assert time.time() - t1 < 20  # not after the jobs' 60 s
    assert "Traceback" not in err and "stopped: stopped by " + sig in err
    time.sleep(0.5)
    for pid in pids:  # no worker left behind
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
