"""``genoseg fetch-model`` against a local fake hub on 127.0.0.1 (never the real network)."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from genoseg import hub
from genoseg.cli import main

REV = "0123abcd"
NT_FILES = {
    "jax_model/hyperparams.json": b'{"features": ["exon", "intron"]}',
    "jax_model/pytree_ckpt.joblib": bytes(range(256)) * 4000,  # ~1 MB, crosses the read chunk
}
TORSO_FILES = {"jax_model/params.joblib": b"P" * 1000, "jax_model/state.joblib": b"S" * 10}


class FakeHub:
    """Serves ``/{owner}/{name}/resolve/{rev}/{path}``; records every request."""

    def __init__(self):
        self.files = {}          # url path -> bytes
        self.requests = []       # (path, headers dict)
        self.required_token = None
        self.truncate = set()    # url paths answered with a short body
        self.redirect = set()    # url paths answered with 302 to /cdn/...
        self.fail = {}           # url path -> status

    def add(self, repo, rev, files):
        for rel, data in files.items():
            self.files[f"/{repo}/resolve/{rev}/{rel}"] = data

    def __enter__(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                fake.requests.append((self.path, dict(self.headers)))
                path = self.path
                if path in fake.fail:
                    self.send_error(fake.fail[path])
                    return
                if path.startswith("/cdn/"):
                    data = fake.files.get(path[len("/cdn"):])
                else:
                    if fake.required_token and self.headers.get("Authorization") != f"Bearer {fake.required_token}":
                        self.send_error(401, "Unauthorized")
                        return
                    if path in fake.redirect:
                        self.send_response(302)
                        self.send_header("Location", f"http://localhost:{self.server.server_port}/cdn{path}")
                        self.end_headers()
                        return
                    data = fake.files.get(path)
                if data is None:
                    self.send_error(404, "Entry not found")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2] if path in fake.truncate else data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}"
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_hub(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    with FakeHub() as h:
        h.add("InstaDeepAI/segment_nt", REV, NT_FILES)
        h.add("InstaDeepAI/segment_borzoi", REV, TORSO_FILES)
        yield h


def _fetch(fake, outdir, *extra, backbone="segment_nt"):
    return main(["fetch-model", "--backbone", backbone, "--revision", REV, "--outdir", str(outdir),
                 "--endpoint", fake.endpoint, *extra])


def test_downloads_segment_nt_files_and_provenance(fake_hub, tmp_path):
    out = tmp_path / "cache" / "segment_nt" / REV
    assert _fetch(fake_hub, out) == 0
    for rel, data in NT_FILES.items():
        assert (out / rel).read_bytes() == data
    rec = json.loads((out / hub.PROVENANCE_FILE).read_text())
    assert rec["repo"] == "InstaDeepAI/segment_nt" and rec["revision"] == REV
    digest = hashlib.sha256(NT_FILES["jax_model/pytree_ckpt.joblib"]).hexdigest()
    assert rec["files"]["jax_model/pytree_ckpt.joblib"]["sha256"] == digest
    # nothing left behind next to the destination
    assert sorted(p.name for p in out.parent.iterdir()) == [REV]
    assert {p for p, _ in fake_hub.requests} == {f"/InstaDeepAI/segment_nt/resolve/{REV}/{r}" for r in NT_FILES}


def test_enformer_borzoi_layout(fake_hub, tmp_path):
    out = tmp_path / "m"
    assert _fetch(fake_hub, out, backbone="segment_borzoi") == 0
    assert sorted(p.name for p in (out / "jax_model").iterdir()) == ["params.joblib", "state.joblib"]


def test_second_run_reuses_files(fake_hub, tmp_path):
    out = tmp_path / "m"
    assert _fetch(fake_hub, out) == 0
    n = len(fake_hub.requests)
    assert _fetch(fake_hub, out) == 0
    assert len(fake_hub.requests) == n
    assert _fetch(fake_hub, out, "--force") == 0
    assert len(fake_hub.requests) == n + len(NT_FILES)


def test_endpoint_from_environment(fake_hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", fake_hub.endpoint)
    out = tmp_path / "m"
    assert main(["fetch-model", "--backbone", "segment_nt", "--revision", REV, "--outdir", str(out)]) == 0
    assert hub.is_complete(out, "segment_nt")


def test_http_404_is_a_clear_error_and_leaves_nothing(fake_hub, tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["fetch-model", "--backbone", "segment_nt", "--revision", "nosuchrev", "--outdir", str(out),
                 "--endpoint", fake_hub.endpoint]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and "HTTP 404" in err[0] and "--revision" in err[0]
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_second_file_failing_leaves_no_partial_model(fake_hub, tmp_path, capsys):
    fake_hub.fail[f"/InstaDeepAI/segment_nt/resolve/{REV}/jax_model/pytree_ckpt.joblib"] = 500
    out = tmp_path / "m"
    assert _fetch(fake_hub, out) == 2
    assert "HTTP 500" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_truncated_body_is_an_error(fake_hub, tmp_path, capsys):
    fake_hub.truncate.add(f"/InstaDeepAI/segment_nt/resolve/{REV}/jax_model/pytree_ckpt.joblib")
    out = tmp_path / "m"
    assert _fetch(fake_hub, out) == 2
    err = capsys.readouterr().err
    assert "error" in err and list(tmp_path.iterdir()) == []


def test_token_sent_to_hub_only_not_to_redirect_target(fake_hub, tmp_path, monkeypatch):
    fake_hub.required_token = "secret-token"
    ckpt = f"/InstaDeepAI/segment_nt/resolve/{REV}/jax_model/pytree_ckpt.joblib"
    fake_hub.redirect.add(ckpt)
    out = tmp_path / "m"
    assert _fetch(fake_hub, out) == 2  # no token: 401
    monkeypatch.setenv("HF_TOKEN", "secret-token")
    fake_hub.requests.clear()
    assert _fetch(fake_hub, out) == 0
    assert (out / "jax_model/pytree_ckpt.joblib").read_bytes() == NT_FILES["jax_model/pytree_ckpt.joblib"]
    auth = {p: h.get("Authorization") for p, h in fake_hub.requests}
    assert auth[ckpt] == "Bearer secret-token"
    assert auth["/cdn" + ckpt] is None  # redirected to another host (localhost vs 127.0.0.1)


def test_401_message_mentions_token(fake_hub, tmp_path, capsys):
    fake_hub.required_token = "x"
    assert _fetch(fake_hub, tmp_path / "m") == 2
    assert "HF_TOKEN" in capsys.readouterr().err


def test_unreachable_endpoint(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    # a port nobody listens on
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    rc = main(["fetch-model", "--backbone", "segment_nt", "--outdir", str(tmp_path / "m"),
               "--endpoint", f"http://127.0.0.1:{port}", "--timeout", "5"])
    assert rc == 2 and "cannot reach" in capsys.readouterr().err


def test_url_layout():
    assert (hub.file_url("https://huggingface.co/", "InstaDeepAI/segment_nt", "main", "jax_model/state.joblib")
            == "https://huggingface.co/InstaDeepAI/segment_nt/resolve/main/jax_model/state.joblib")
    assert "refs%2Fpr%2F1" in hub.file_url("https://h", "a/b", "refs/pr/1", "x")
