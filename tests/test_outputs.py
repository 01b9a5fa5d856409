"""Output naming and writing: names never escape OUTDIR, failures leave nothing behind."""

import os
import stat

import pytest

from genoseg.errors import GenosegError
from genoseg.outputs import atomic_path, escape_name, unescape_name


@pytest.mark.parametrize("name", ["chr1", "a/b", "../x", "..", ".", "chr 1", "HLA-A*01:01", "ü/ß", "%2F"])
def test_escape_name_is_one_safe_reversible_component(name, tmp_path):
    esc = escape_name(name)
    assert "/" not in esc and esc not in (".", "..") and " " not in esc
    assert unescape_name(esc) == name
    assert os.path.dirname(os.path.abspath(tmp_path / esc)) == str(tmp_path)


def test_escape_name_refuses_empty():
    with pytest.raises(GenosegError):
        escape_name("")


@pytest.mark.parametrize("name", ["x" * 240, "é" * 100])
def test_escape_name_refuses_names_too_long_for_a_file_name(name):
    with pytest.raises(GenosegError, match="too long for a file name"):
        escape_name(name)
    assert escape_name(name[:20])


@pytest.mark.parametrize("is_dir", [False, True])
def test_atomic_path_success_modes_and_no_overwrite(tmp_path, is_dir):
    final = tmp_path / "out"
    old = os.umask(0o022)
    try:
        with atomic_path(str(final), is_dir=is_dir) as tmp:
            if is_dir:
                (tmp_path / tmp / "f").write_text("x")
            else:
                open(tmp, "w").write("x")
            assert not final.exists()
    finally:
        os.umask(old)
    mode = stat.S_IMODE(final.stat().st_mode)
    assert mode == (0o755 if is_dir else 0o644)
    with pytest.raises(GenosegError, match="--overwrite"):
        with atomic_path(str(final), is_dir=is_dir):
            pass
    assert os.listdir(tmp_path) == ["out"]


def test_atomic_path_failure_leaves_nothing_and_keeps_old(tmp_path):
    final = tmp_path / "out.txt"
    final.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(str(final), overwrite=True) as tmp:
            open(tmp, "w").write("half")
            raise RuntimeError("boom")
    assert final.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]
