"""--device (no silent CPU fallback), device in logs and chunk metadata, exit statuses
69/75, and the persistent XLA compilation cache (measured across processes)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pyarrow.parquet as pq
import pytest

from genoseg import device
from genoseg.cli import main

ROOT = Path(__file__).resolve().parents[1]
NT = ROOT / "tests/data/golden/segment_nt_tiny"


def _plan(tmp_path, model=NT):
    rng = np.random.default_rng(0)
    fasta = tmp_path / "g.fa"
    fasta.write_text(">c1\n" + "".join(rng.choice(list("ACGT"), 600)) + "\n")
    assert main(["plan", "--fasta", str(fasta), "--model", str(model), "--window-length", "192",
                 "--outdir", str(tmp_path / "plan")]) == 0
    return fasta, tmp_path / "plan/chunks/chunk_00000.json"


def _log_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if re.match(r"\d\d:\d\d:\d\d (INFO|WARNING|ERROR|DEBUG) ", line)]


def test_device_gpu_without_gpu_stops_before_loading(tmp_path, monkeypatch, capsys):
    fasta, chunk = _plan(tmp_path)
    capsys.readouterr()
    import genoseg.models

    def must_not_load(*a, **k):
        raise AssertionError("weights loaded although the device is missing")

    monkeypatch.setattr(genoseg.models, "load_model", must_not_load)
    out = tmp_path / "c.parquet"
    rc = main(["predict", "--device", "gpu", "--fasta", str(fasta), "--model", str(NT),
               "--chunk", str(chunk), "--out", str(out)])
    assert rc == device.EXIT_DEVICE_UNAVAILABLE == 69
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("genoseg predict: error: --device gpu: no GPU visible")
    assert "--device cpu" in err[0] and not out.exists()


def test_device_gpu_in_a_fresh_process(tmp_path):
    """What a GPU task on a CPU-only node does: JAX left to find its backends itself."""
    env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
    env["PYTHONPATH"] = str(ROOT / "src")
    proc = subprocess.run([sys.executable, "-m", "genoseg.cli", "predict-seq", "--device", "gpu",
                           "--model", str(NT), "--sequence", "ACGT" * 24], env=env,
                          capture_output=True, text=True, timeout=300)
    if any(d.platform in ("gpu", "cuda", "rocm") for d in jax.devices()) or proc.returncode == 0:
        assert proc.returncode == 0 and "device: gpu: " in proc.stderr  # a machine with a GPU
        return
    assert proc.returncode == 69, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "no GPU visible" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_auto_logs_the_cpu_first_and_records_it_in_the_chunk(tmp_path, capsys):
    fasta, chunk = _plan(tmp_path)
    capsys.readouterr()
    out = tmp_path / "c.parquet"
    assert main(["predict", "--fasta", str(fasta), "--model", str(NT), "--chunk", str(chunk),
                 "--out", str(out)]) == 0
    lines = _log_lines(capsys.readouterr().err)
    first = lines[0].split(" INFO ", 1)[1]
    expected = str(device.describe(jax.devices("cpu")[0]))
    assert first == f"device: {expected}"
    assert expected.startswith("cpu: ") and "GiB" in expected and "cores" in expected
    meta = json.loads(pq.read_schema(out).metadata[b"genoseg"])
    assert meta["device"] == expected
    # collect carries it into the dataset index, so readers need not open footers
    assert main(["collect", "--plan", str(tmp_path / "plan/plan.json"), "--chunks", str(out),
                 "--outdir", str(tmp_path / "out")]) == 0
    ds = tmp_path / "out/segment_nt/predictions"
    assert json.loads((ds / "_genoseg.json").read_text())["devices"] == [expected]


def test_device_cpu_and_bad_choice(tmp_path, capsys):
    assert main(["predict-seq", "--device", "cpu", "--model", str(NT), "--sequence", "ACGT" * 24]) == 0
    assert "device: cpu: " in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["predict-seq", "--device", "tpu", "--model", str(NT), "--sequence", "ACGT" * 24])
    assert exc.value.code == 2


def test_annotate_takes_device_options(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["annotate", "--device", "gpu", "--fasta", str(tmp_path / "missing.fa"), "--outdir", str(out)])
    assert rc == 69 and "no GPU visible" in capsys.readouterr().err
    assert not out.exists()


def test_oom_while_loading_weights_exits_75(tmp_path, monkeypatch, capsys):
    """A real XLA out-of-memory error raised while the weights go to the device."""
    fasta, chunk = _plan(tmp_path)
    capsys.readouterr()
    real = jax.device_put

    def device_put_too_big(x, *a, **k):
        return real(np.broadcast_to(np.float32(0), (10 ** 12,)))  # 4 TB: RESOURCE_EXHAUSTED

    monkeypatch.setattr(jax, "device_put", device_put_too_big)
    out = tmp_path / "c.parquet"
    rc = main(["predict", "--fasta", str(fasta), "--model", str(NT), "--chunk", str(chunk),
               "--out", str(out), "--batch-size", "4"])
    assert rc == device.EXIT_DEVICE_OOM == 75
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and "out of accelerator memory with --batch-size 4" in err[0]
    assert "smaller --batch-size" in err[0] and not out.exists()


def test_oom_classification():
    try:
        jax.device_put(np.broadcast_to(np.float32(0), (10 ** 12,)))
    except Exception as exc:  # noqa: BLE001
        real = exc
    assert device.is_device_oom(real)
    assert device.is_device_oom(RuntimeError("INTERNAL: CUBLAS_STATUS_ALLOC_FAILED"))
    assert not device.is_device_oom(MemoryError("out of memory"))  # host memory: not a batch problem
    assert not device.is_device_oom(ValueError("bad base"))


def _cached_run(cache, env_cache=False):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "JAX_PLATFORMS": "cpu"}
    args = [sys.executable, "-m", "genoseg.cli", "predict-seq", "--model", str(NT), "--sequence", "ACGT" * 24]
    if env_cache:
        env[device.CACHE_ENV] = str(cache)
    else:
        args += ["--jax-cache-dir", str(cache)]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    m = re.search(r"XLA compilation cache (.+): (\d+) hit\(s\), (\d+) miss\(es\)", proc.stderr)
    assert m, proc.stderr
    assert Path(m.group(1)) == cache
    return int(m.group(2)), int(m.group(3))


def test_persistent_compilation_cache_is_hit_by_the_next_process(tmp_path):
    cache = tmp_path / "xla"
    hits, misses = _cached_run(cache)
    assert hits == 0 and misses >= 1
    entries = sorted(p.name for p in cache.iterdir())
    assert len(entries) >= 1
    hits2, misses2 = _cached_run(cache, env_cache=True)  # GENOSEG_JAX_CACHE_DIR
    assert hits2 == misses and misses2 == 0
    assert sorted(p.name for p in cache.iterdir()) == entries


def test_cache_dir_that_cannot_be_created(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = main(["predict-seq", "--model", str(NT), "--sequence", "ACGT" * 24,
               "--jax-cache-dir", str(blocker / "sub")])
    assert rc == 2 and "--jax-cache-dir" in capsys.readouterr().err
