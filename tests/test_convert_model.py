"""Converted weights: safetensors copies of the published joblib checkpoints.

Bit-identical predictions, SHA-256 record and verification (tampered files refused),
and no pickle opened anywhere once a directory is converted."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import genoseg
from genoseg import checkpoint
from safetensors.numpy import load_file

from genoseg.checkpoint import load_tree, save_tree
from genoseg.cli import main
from genoseg.convert import RECORD, convert_model
from genoseg.errors import CheckpointError
from genoseg.models import load_model

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests/data/golden"
CASES = {"segment_nt_tiny": 192, "segment_enformer_tiny": 256, "segment_borzoi_tiny": 512}


def _seqs(length):
    rng = np.random.default_rng(length)
    return ["".join(rng.choice(list("ACGT"), length)) for _ in range(2)]


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def no_pickles(monkeypatch):
    """Any attempt to unpickle fails the test."""
    def refuse(self):
        raise AssertionError("a pickle was opened")

    monkeypatch.setattr(checkpoint._SafeUnpickler, "load", refuse)


@pytest.mark.parametrize("name", sorted(CASES))
def test_converted_predictions_are_bit_identical(name, tmp_path, capsys):
    src, dst = GOLDEN / name, tmp_path / "converted"
    assert main(["convert-model", "--model", str(src), "--outdir", str(dst)]) == 0
    assert capsys.readouterr().out.strip() == str(dst)
    rec = json.loads((dst / RECORD).read_text())
    assert rec["genoseg_version"] == genoseg.__version__
    assert rec["backbone"] == name.replace("_tiny", "")
    for rel, info in rec["source"].items():
        assert rel.endswith(".joblib") and info["sha256"] == _sha(src / rel)
        assert info["bytes"] == (src / rel).stat().st_size
    for rel, info in rec["files"].items():
        assert info["sha256"] == _sha(dst / rel) and info["bytes"] == (dst / rel).stat().st_size
        if rel.endswith(".safetensors"):  # the whole tree, unused entries included
            a, b = checkpoint.load_params_tree(src / info["source"]), load_tree(dst / rel)
            own = load_file(dst / rel)  # safetensors' own reader agrees with the memory-mapped views
            assert own.keys() == {f"{m}/{k}" for m in b for k in b[m]}
            for key, arr in own.items():
                view = b[key.rpartition("/")[0]][key.rpartition("/")[2]]
                assert view.dtype == arr.dtype and not view.flags.writeable
                np.testing.assert_array_equal(view, arr)
            assert a.keys() == b.keys()
            for mod in a:
                assert a[mod].keys() == b[mod].keys()
                for k in a[mod]:
                    assert (a[mod][k].dtype, a[mod][k].shape) == (b[mod][k].dtype, b[mod][k].shape)
                    np.testing.assert_array_equal(a[mod][k], b[mod][k])
    assert not list(dst.rglob("*.joblib"))
    umask = os.umask(0)
    os.umask(umask)
    assert {p.stat().st_mode & 0o777 for p in dst.rglob("*") if p.is_file()} == {0o666 & ~umask}  # not private
    assert {p.name for p in (dst / "jax_model").iterdir()} == {
        Path(r).name for r in rec["files"] if r.startswith("jax_model/")}
    seqs = _seqs(CASES[name])
    ref = load_model(src)
    got = load_model(dst)
    assert got.backbone == ref.backbone
    np.testing.assert_array_equal(got.predict(seqs), ref.predict(seqs))
    np.testing.assert_array_equal(got.logits(seqs), ref.logits(seqs))


@pytest.mark.parametrize("name", ["segment_nt_tiny", "segment_borzoi_tiny"])
def test_no_pickle_is_opened_once_converted(name, tmp_path, no_pickles):
    dst = tmp_path / "m"
    shutil.copytree(GOLDEN / name, dst)
    with pytest.raises(AssertionError, match="pickle was opened"):
        load_model(dst)  # the fixture is effective on the joblib path
    # in place: the joblib files stay beside the converted ones
    _convert_unguarded(dst, dst)
    for f in sources_of(name):
        assert (dst / "jax_model" / f).exists()
    model = load_model(dst)
    assert model.backbone == name.replace("_tiny", "")
    model.predict(_seqs(CASES[name]))


def sources_of(name):
    return ["pytree_ckpt.joblib"] if name.startswith("segment_nt") else ["params.joblib", "state.joblib"]


def _convert_unguarded(src, dst):
    """convert_model with the real unpickler (the ``no_pickles`` fixture patched it)."""
    saved = checkpoint._SafeUnpickler.load
    try:
        checkpoint._SafeUnpickler.load = checkpoint.pickle._Unpickler.load
        convert_model(str(src), str(dst))
    finally:
        checkpoint._SafeUnpickler.load = saved


def test_predict_command_on_converted_model_opens_no_pickle(tmp_path, no_pickles):
    conv = tmp_path / "conv"
    _convert_unguarded(GOLDEN / "segment_nt_tiny", conv)
    rng = np.random.default_rng(1)
    fasta = tmp_path / "g.fa"
    fasta.write_text(">c1\n" + "".join(rng.choice(list("ACGT"), 500)) + "\n")
    assert main(["plan", "--fasta", str(fasta), "--model", str(conv), "--window-length", "192",
                 "--outdir", str(tmp_path / "plan")]) == 0
    for chunk in sorted((tmp_path / "plan/chunks").glob("chunk_*.json")):
        assert main(["predict", "--fasta", str(fasta), "--model", str(conv), "--chunk", str(chunk),
                     "--out", str(tmp_path / (chunk.stem + ".parquet"))]) == 0


@pytest.mark.parametrize("victim", ["jax_model/pytree_ckpt.safetensors", "jax_model/hyperparams.json"])
def test_tampered_converted_file_is_refused(victim, tmp_path, capsys):
    conv = tmp_path / "conv"
    convert_model(str(GOLDEN / "segment_nt_tiny"), str(conv))
    path = conv / victim
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, same size
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"SHA-256 differs .* refusing to load it"):
        load_model(conv)
    capsys.readouterr()
    rc = main(["predict-seq", "--model", str(conv), "--sequence", "ACGT" * 24])
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert rc == 2 and len(err) == 1 and victim in err[0] and "convert-model" in err[0]


def test_truncated_missing_and_unrecorded_files(tmp_path):
    conv = tmp_path / "conv"
    convert_model(str(GOLDEN / "segment_enformer_tiny"), str(conv))
    st = conv / "jax_model/state.safetensors"
    good = st.read_bytes()
    st.write_bytes(good[:-8])
    with pytest.raises(CheckpointError, match="bytes, convert.json says"):
        load_model(conv)
    st.unlink()
    with pytest.raises(CheckpointError, match="listed in convert.json but missing"):
        load_model(conv)
    st.write_bytes(good)
    load_model(conv)
    (conv / RECORD).unlink()  # safetensors without a record: cannot be verified
    with pytest.raises(CheckpointError, match="no convert.json beside it"):
        load_model(conv)


def test_record_paths_stay_inside_the_directory(tmp_path):
    conv = tmp_path / "conv"
    convert_model(str(GOLDEN / "segment_nt_tiny"), str(conv))
    rec = json.loads((conv / RECORD).read_text())
    rec["files"]["../outside.json"] = rec["files"]["jax_model/hyperparams.json"]
    (conv / RECORD).write_text(json.dumps(rec))
    with pytest.raises(CheckpointError, match="refusing path"):
        load_model(conv)


def test_existing_output_and_bad_source(tmp_path, capsys):
    conv = tmp_path / "conv"
    assert main(["convert-model", "--model", str(GOLDEN / "segment_nt_tiny"), "--outdir", str(conv)]) == 0
    before = (conv / RECORD).read_bytes()
    capsys.readouterr()
    assert main(["convert-model", "--model", str(GOLDEN / "segment_nt_tiny"), "--outdir", str(conv)]) == 2
    assert "--overwrite" in capsys.readouterr().err and (conv / RECORD).read_bytes() == before
    assert main(["convert-model", "--model", str(GOLDEN / "segment_nt_tiny"), "--outdir", str(conv),
                 "--overwrite"]) == 0
    empty = tmp_path / "empty"
    (empty / "jax_model").mkdir(parents=True)
    assert main(["convert-model", "--model", str(empty), "--outdir", str(tmp_path / "out")]) == 2
    assert "no jax_model/*.joblib" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_evil_pickle_is_refused_by_conversion_too(tmp_path, capsys):
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    src = tmp_path / "src"
    shutil.copytree(GOLDEN / "segment_nt_tiny", src)
    (src / "jax_model/pytree_ckpt.joblib").write_bytes(pickle.dumps({"m": {"w": Evil()}}))
    assert main(["convert-model", "--model", str(src), "--outdir", str(tmp_path / "out")]) == 2
    assert re.search(r"refusing to load global '(posix|os)\.system'", capsys.readouterr().err)
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "out").exists()


def test_backbone_from_provenance_not_folder_name(tmp_path):
    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = tmp_path / "hub/models--InstaDeepAI--segment_nt_multi_species/snapshots" / commit
    shutil.copytree(GOLDEN / "segment_nt_tiny", snap)
    assert load_model(snap).backbone == "segment_nt_multi_species"
    plain = tmp_path / commit  # a folder named by commit hash, with genoseg's fetch record
    shutil.copytree(GOLDEN / "segment_nt_tiny", plain)
    assert load_model(plain).backbone == "segment_nt"
    (plain / "fetch.json").write_text(json.dumps({"repo": "InstaDeepAI/segment_nt_multi_species"}))
    assert load_model(plain).backbone == "segment_nt_multi_species"
    conv = tmp_path / "converted"  # the converted copy keeps it (convert.json)
    convert_model(str(snap), str(conv))
    assert load_model(conv).backbone == "segment_nt_multi_species"


def test_tree_round_trip_keeps_dtypes_and_values(tmp_path):
    tree = {"a/~/lin": {"w": np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
                        "b": np.float16([1.5, -2])},
            "bn/~/mean_ema": {"counter": np.array(7, np.int32), "hidden": np.zeros((0, 3), np.float64)}}
    path = tmp_path / "t.safetensors"
    save_tree(tree, path)
    got = load_tree(path)
    assert got.keys() == tree.keys()
    for mod in tree:
        for name, arr in tree[mod].items():
            assert got[mod][name].dtype == arr.dtype and got[mod][name].shape == arr.shape
            np.testing.assert_array_equal(got[mod][name], arr)
    import ml_dtypes

    with pytest.raises(CheckpointError, match="dtype bfloat16"):
        save_tree({"m": {"w": np.zeros(2, ml_dtypes.bfloat16)}}, tmp_path / "b.safetensors")
    with pytest.raises(CheckpointError, match="module/param"):
        save_tree({"m": {"a/b": np.zeros(2, np.float32)}}, tmp_path / "c.safetensors")
    garbage = tmp_path / "g.safetensors"
    garbage.write_bytes(b"\xff" * 64)
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_tree(garbage)
