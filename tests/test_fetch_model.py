"""``genoseg fetch-model`` through the Hugging Face client, against a local fake hub on
127.0.0.1 (tests/fakehub.py) or a pre-populated cache with HF_HUB_OFFLINE=1: never the
real network."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import numpy as np
import pytest

from fakehub import FakeHub
from genoseg import hub
from genoseg.cli import main
from genoseg.convert import RECORD
from genoseg.models import load_model

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests/data/golden"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
OTHER_COMMIT = "fedcba9876543210fedcba9876543210fedcba98"
CKPT = "jax_model/pytree_ckpt.joblib"


def _files(name):
    files = {f"jax_model/{p.name}": p.read_bytes() for p in (GOLDEN / name / "jax_model").iterdir()}
    files["README.md"] = b"model card"              # outside jax_model/: never fetched
    files["pytorch_model.bin"] = b"\0" * 4096
    return files


NT_FILES = _files("segment_nt_tiny")
BORZOI_FILES = _files("segment_borzoi_tiny")


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    for var in ("HF_TOKEN", "HF_ENDPOINT", "HF_HUB_OFFLINE", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))  # no token file of the user's
    with FakeHub() as h:
        h.add("InstaDeepAI/segment_nt", NT_FILES, COMMIT, refs=("main", "v1"))
        h.add("InstaDeepAI/segment_borzoi", BORZOI_FILES, OTHER_COMMIT)
        yield h


def _fetch(fake, outdir, *extra, backbone="segment_nt", cache=None, revision="main"):
    cache = cache or Path(outdir).parent / "hf_cache"
    return main(["fetch-model", "--backbone", backbone, "--revision", revision, "--outdir", str(outdir),
                 "--endpoint", fake.endpoint, "--cache-dir", str(cache), *extra])


def _errors(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if "error" in line]


def test_downloads_places_verifies_records_and_converts(fake_hub, tmp_path):
    out = tmp_path / "models" / "segment_nt" / "main"
    assert _fetch(fake_hub, out, cache=tmp_path / "hf_cache") == 0
    for rel, data in NT_FILES.items():
        if rel.startswith("jax_model/"):
            assert (out / rel).read_bytes() == data
    rec = json.loads((out / hub.PROVENANCE_FILE).read_text())
    assert rec["repo"] == "InstaDeepAI/segment_nt" and rec["revision"] == "main" and rec["commit"] == COMMIT
    assert rec["files"][CKPT]["sha256"] == hashlib.sha256(NT_FILES[CKPT]).hexdigest()
    assert set(rec["files"]) == {r for r in NT_FILES if r.startswith("jax_model/")}
    # converted in place: the model loads without pickles, and predicts as the joblib files do
    conv = json.loads((out / RECORD).read_text())
    assert conv["backbone"] == "segment_nt" and "jax_model/pytree_ckpt.safetensors" in conv["files"]
    seq = ["ACGT" * 48]
    np.testing.assert_array_equal(load_model(out).predict(seq), load_model(GOLDEN / "segment_nt_tiny").predict(seq))
    # only jax_model/ was asked for; nothing left beside the destination
    assert not any("README" in p or "pytorch_model" in p for p in fake_hub.paths())
    assert sorted(p.name for p in out.parent.iterdir()) == ["main"]
    # the Hugging Face cache holds the snapshot under the resolved commit
    snap = tmp_path / "hf_cache/models--InstaDeepAI--segment_nt/snapshots" / COMMIT / CKPT
    assert snap.read_bytes() == NT_FILES[CKPT]


def test_commit_revision_is_pinned(fake_hub, tmp_path):
    out = tmp_path / "m"
    assert _fetch(fake_hub, out, revision=COMMIT) == 0
    assert json.loads((out / "fetch.json").read_text())["commit"] == COMMIT
    assert not any("/revision/" in p for p in fake_hub.paths())  # a commit needs no resolving
    out2 = tmp_path / "m2"
    assert _fetch(fake_hub, out2, revision="v1") == 0  # a tag resolves to its commit
    assert json.loads((out2 / "fetch.json").read_text())["commit"] == COMMIT


def test_enformer_borzoi_layout_with_and_without_conversion(fake_hub, tmp_path):
    out = tmp_path / "m"
    assert _fetch(fake_hub, out, "--no-convert", backbone="segment_borzoi") == 0
    assert sorted(p.name for p in (out / "jax_model").iterdir()) == ["params.joblib", "state.joblib"]
    assert not (out / RECORD).exists()
    assert _fetch(fake_hub, out, backbone="segment_borzoi") == 0  # complete: converts only
    assert sorted(p.name for p in (out / "jax_model").iterdir()) == [
        "params.joblib", "params.safetensors", "state.joblib", "state.safetensors"]
    assert json.loads((out / RECORD).read_text())["backbone"] == "segment_borzoi"


def test_second_run_reuses_files_and_force_fetches_again(fake_hub, tmp_path):
    out = tmp_path / "m"
    assert _fetch(fake_hub, out) == 0
    n = len(fake_hub.requests)
    assert _fetch(fake_hub, out) == 0
    assert len(fake_hub.requests) == n
    assert _fetch(fake_hub, out, "--force") == 0
    assert sum(p.endswith(CKPT) for p in fake_hub.paths("GET")) == 2
    assert json.loads((out / RECORD).read_text())["files"]
    load_model(out)


def test_shared_cache_and_offline_mode(fake_hub, tmp_path, monkeypatch, capsys):
    cache = tmp_path / "hf_cache"
    assert _fetch(fake_hub, tmp_path / "a", cache=cache) == 0
    n = len(fake_hub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert _fetch(fake_hub, tmp_path / "b", cache=cache) == 0  # from the cache, no request
    assert len(fake_hub.requests) == n
    assert (tmp_path / "b" / CKPT).read_bytes() == NT_FILES[CKPT]
    assert json.loads((tmp_path / "b/fetch.json").read_text())["commit"] == COMMIT
    capsys.readouterr()
    assert _fetch(fake_hub, tmp_path / "c", cache=tmp_path / "empty_cache") == 2
    err = _errors(capsys)
    assert len(err) == 1 and "HF_HUB_OFFLINE" in err[0] and "--model_dir" in err[0]
    assert not (tmp_path / "c").exists()


def test_resumes_an_interrupted_transfer(fake_hub, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 1 << 16)  # the 1.4 MB file in pieces
    fake_hub.truncate[CKPT] = 1  # the first answer stops half-way
    out = tmp_path / "m"
    assert _fetch(fake_hub, out) == 0
    assert (out / CKPT).read_bytes() == NT_FILES[CKPT]
    ranges = [h.get("range") for m, p, h in fake_hub.requests if m == "GET" and p.endswith(CKPT)]
    assert len(ranges) == 2 and ranges[0] is None and ranges[1].startswith("bytes=")


def test_corrupt_transfer_is_refused_and_leaves_nothing(fake_hub, tmp_path, capsys):
    fake_hub.corrupt.add(CKPT)
    out = tmp_path / "m"
    assert _fetch(fake_hub, out) == 2
    err = _errors(capsys)
    assert len(err) == 1 and "does not match the hub's checksum" in err[0] and "--force" in err[0]
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    fake_hub.corrupt.clear()
    assert _fetch(fake_hub, out, "--force") == 0  # --force replaces the bad cache entry
    assert (out / CKPT).read_bytes() == NT_FILES[CKPT]


def test_endpoint_from_environment(fake_hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", fake_hub.endpoint)
    out = tmp_path / "m"
    assert main(["fetch-model", "--backbone", "segment_nt", "--revision", "main", "--outdir", str(out),
                 "--cache-dir", str(tmp_path / "c")]) == 0
    assert hub.is_complete(out, "segment_nt")
    assert json.loads((out / "fetch.json").read_text())["endpoint"] == fake_hub.endpoint


def test_unknown_revision_or_repository_is_a_clear_error(fake_hub, tmp_path, capsys):
    out = tmp_path / "m"
    assert _fetch(fake_hub, out, revision="nosuchrev") == 2
    err = _errors(capsys)
    assert len(err) == 1 and "no revision 'nosuchrev'" in err[0] and "--revision" in err[0]
    assert _fetch(fake_hub, out, "--repo", "someone/nothing") == 2
    err = _errors(capsys)
    assert len(err) == 1 and "someone/nothing not found" in err[0] and "--repo" in err[0]
    assert not out.exists()


def test_a_file_failing_leaves_no_partial_model(fake_hub, tmp_path, capsys):
    fake_hub.fail[f"/InstaDeepAI/segment_nt/resolve/{COMMIT}/{CKPT}"] = 403
    out = tmp_path / "m"
    assert _fetch(fake_hub, out) == 2
    err = _errors(capsys)
    assert len(err) == 1 and "download failed" in err[0]
    assert [p.name for p in tmp_path.iterdir()] == ["hf_cache"]


def test_token_from_environment_not_sent_to_redirect_target(fake_hub, tmp_path, monkeypatch, capsys):
    fake_hub.required_token = "secret-token"
    fake_hub.redirect_lfs = True
    out = tmp_path / "m"
    assert _fetch(fake_hub, out) == 2  # no token: 401
    err = _errors(capsys)
    assert len(err) == 1 and "HF_TOKEN" in err[0]
    monkeypatch.setenv("HF_TOKEN", "secret-token")
    fake_hub.requests.clear()
    assert _fetch(fake_hub, out) == 0
    assert (out / CKPT).read_bytes() == NT_FILES[CKPT]
    auth = {(m, p): h.get("authorization") for m, p, h in fake_hub.requests}
    assert auth[("GET", f"/api/models/InstaDeepAI/segment_nt/revision/main")] == "Bearer secret-token"
    cdn = [a for (m, p), a in auth.items() if p.startswith("/cdn/")]
    assert cdn and all(a is None for a in cdn)  # another host (localhost vs 127.0.0.1)


def test_unreachable_endpoint_says_how_to_prestage(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    rc = main(["fetch-model", "--backbone", "segment_nt", "--outdir", str(tmp_path / "m"),
               "--endpoint", f"http://127.0.0.1:{port}", "--cache-dir", str(tmp_path / "c"), "--timeout", "5"])
    err = _errors(capsys)
    assert rc == 2 and len(err) == 1 and "cannot reach" in err[0] and "--model_dir" in err[0]
    assert not (tmp_path / "m").exists()


def test_bad_endpoint_and_empty_revision(tmp_path, capsys):
    assert main(["fetch-model", "--backbone", "segment_nt", "--outdir", str(tmp_path / "m"),
                 "--endpoint", "ftp://x"]) == 2
    assert "http(s) URL" in capsys.readouterr().err
    assert main(["fetch-model", "--backbone", "segment_nt", "--outdir", str(tmp_path / "m"),
                 "--revision", ""]) == 2
    assert "--revision" in capsys.readouterr().err
