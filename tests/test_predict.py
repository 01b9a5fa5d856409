"""predict_chunk internals: batch schedule (no padded copies), ring-buffer merge, writer
thread, statistics; batch-shape invariance of the real SegmentNT."""

from __future__ import annotations

import os
import sys
import threading
import tracemalloc

import numpy as np
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from fakes import FakeModel  # noqa: E402
from test_engine import TINY_NT, rand_seq, write_fasta  # noqa: E402

import genoseg.predict as gp  # noqa: E402
from genoseg import store, windows  # noqa: E402
from genoseg.fasta import Fasta  # noqa: E402
from genoseg.predict import Jobs, merge_plan, predict_chunk, schedule, taper  # noqa: E402


class CountingModel:
    """Wraps a model and records the shape of every device call."""

    def __init__(self, model):
        self._m = model
        self.calls: list[tuple[int, int]] = []

    def __getattr__(self, name):
        return getattr(self._m, name)

    def predict_tokens(self, tokens):
        self.calls.append(tuple(np.shape(tokens)))
        return self._m.predict_tokens(tokens)


def scaffolds_genome(rng, n_small=40):
    """A long contig with N gaps (runs of 96-, 48- and 24-bp windows at window 96) and
    many small scaffolds of mixed lengths."""
    big = (rand_seq(rng, 3000, "ACGT") + "N" * 30 + rand_seq(rng, 70, "ACGT") + "N" * 5
           + rand_seq(rng, 1500, "ACGT") + "N" * 8 + rand_seq(rng, 30, "ACGT") + "N" + rand_seq(rng, 800, "ACGT"))
    small = [(f"s{i}", rand_seq(rng, int(rng.choice([30, 60, 100, 150, 250])), "ACGT")) for i in range(n_small)]
    return [("big", big)] + small


def predict_all(model, fasta, tmp, W, batch_size=4, **kw):
    g = windows.geometry_from_model(model)
    plan, chunks = windows.make_plan(fasta, g, os.path.join(tmp, f"plan{W}"), W, overwrite=True)
    stats, rows = [], []
    with Fasta(fasta) as fa:
        for ch in chunks:
            f = os.path.join(tmp, f"c{W}_{ch['chunk']}.parquet")
            stats.append(predict_chunk(model, fa, ch, f, batch_size=batch_size, overwrite=True, **kw))
            rows.append(pq.read_table(f))
    return chunks, stats, rows


def table_values(tables):
    import pyarrow as pa

    t = pa.concat_tables([t.cast(tables[0].schema) for t in tables])
    return t.column("chrom").to_pylist(), np.stack([t.column(c).to_numpy() for c in t.column_names[1:]], 1)


# ------------------------------------------------------------------------ schedule
def test_schedule_pools_lengths_and_keeps_start_order():
    rng = np.random.default_rng(0)
    length = rng.choice([96, 48, 24], size=200, p=[0.7, 0.2, 0.1])
    vlo = np.cumsum(rng.integers(0, 60, size=200))
    vhi = vlo + length
    batches = schedule(length, vlo, vhi, 8, horizon=10**9)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(200))  # every job exactly once
    for b in batches:
        assert len(set(length[b].tolist())) == 1 and 1 <= b.size <= 8
        assert (np.diff(b) > 0).all()
    partial = [b for b in batches if b.size < 8]
    assert len(partial) <= 3  # one per length, at the end
    for n in (96, 48, 24):  # batches of one length come in job (start) order
        order = np.concatenate([b for b in batches if length[b[0]] == n])
        assert (np.diff(order) > 0).all()
    assert [b.tolist() for b in schedule(length, vlo, vhi, 8, 10**9)] == [b.tolist() for b in batches]


def test_schedule_horizon_bounds_the_merge():
    # one short window early, then a long stretch of full-length windows: without the
    # horizon the short window would hold every base after it in the merge
    length = np.array([48] + [96] * 400)
    vlo = np.concatenate([[0], 100 + 48 * np.arange(400)])
    vhi = vlo + length
    _, ring_unbounded = merge_plan(schedule(length, vlo, vhi, 8, horizon=10**9), vlo, vhi)
    batches = schedule(length, vlo, vhi, 8, horizon=2000)
    _, ring = merge_plan(batches, vlo, vhi)
    assert ring_unbounded > 18_000
    assert ring <= 2000
    assert sum(b.size < 8 for b in batches) <= 2


# --------------------------------------------------------------- padded copies
def test_no_padded_copies_across_scaffolds(tmp_path):
    rng = np.random.default_rng(1)
    fa = write_fasta(tmp_path / "g.fa", scaffolds_genome(rng))
    m = CountingModel(FakeModel(window_length=96))
    chunks, stats, _ = predict_all(m, fa, str(tmp_path), W=10_000, batch_size=8)
    assert len(chunks) == 1
    st = stats[0]
    needed = sum(len(p["compute"]) for p in chunks[0]["parts"])
    lengths = {n for p in chunks[0]["parts"] for _, n in p["compute"]}
    assert len(lengths) == 3 and len(chunks[0]["parts"]) > 30
    assert st["windows"] == needed
    assert st["computed_windows"] == sum(b for b, _ in m.calls) == 8 * len(m.calls) == 8 * st["batches"]
    assert {b for b, _ in m.calls} == {8}  # one batch shape per window length
    assert st["padded_windows"] == st["computed_windows"] - needed
    assert st["padded_windows"] <= len(lengths) * 7  # at most one partial batch per length
    # batches of consecutive windows of one length only (the previous design) pad
    # every run's and every scaffold's last batch
    lens = [n for p in chunks[0]["parts"] for _, n in p["compute"]]
    cuts = [0] + [i for i in range(1, len(lens)) if lens[i] != lens[i - 1]] + [len(lens)]
    old_padded = sum(-(-(b - a) // 8) * 8 - (b - a) for a, b in zip(cuts, cuts[1:]))
    assert old_padded > 5 * st["padded_windows"]
    assert st["padded_fraction"] == pytest.approx(st["padded_windows"] / st["computed_windows"])


def test_chunking_invariance_scaffolds_tiny_segment_nt(tiny_nt_96, tmp_path):
    """Pooling windows of many contigs into batches keeps the result bit-for-bit
    identical whatever the chunking (real SegmentNT, fixed batch size), with rc."""
    rng = np.random.default_rng(2)
    fa = write_fasta(tmp_path / "g.fa", scaffolds_genome(rng, n_small=25))
    ref = table_values(predict_all(tiny_nt_96, fa, str(tmp_path), W=10_000, reverse_complement=True)[2])
    for W in (1, 6):
        out = table_values(predict_all(tiny_nt_96, fa, str(tmp_path), W=W, reverse_complement=True)[2])
        assert out[0] == ref[0]
        np.testing.assert_array_equal(out[1], ref[1])


@pytest.fixture(scope="module")
def tiny_nt_96():
    from genoseg.models import load_model

    return load_model(TINY_NT, window_length=96)


def test_window_output_independent_of_row_and_batch_mates(tiny_nt_96):
    """The premise of the batching: for one batch shape a row's output depends only on
    that row's input (real SegmentNT)."""
    rng = np.random.default_rng(3)
    seqs = [rand_seq(rng, 96, "ACGT") for _ in range(12)]
    tok = tiny_nt_96.tokenize(seqs)
    a = np.asarray(tiny_nt_96.predict_tokens(tok[[0, 1, 2, 3, 4, 5, 6, 7]]))
    b = np.asarray(tiny_nt_96.predict_tokens(tok[[8, 9, 10, 0, 11, 0, 0, 0]]))
    for r in (3, 5, 7):
        np.testing.assert_array_equal(b[r], a[0])


# ------------------------------------------------------------------------- merge
def reference_merge(model, fasta_path, chunk, g, batch_size):
    """Direct weighted mean over every window of the chunk (each window predicted in
    a batch of its own copies: the same shape predict_chunk uses), start order."""
    out = {}
    with Fasta(fasta_path) as fa:
        for part in chunk["parts"]:
            a, b = part["owned"]
            num = np.zeros((b - a, len(model.features)))
            den = np.zeros(b - a)
            for start, n in part["compute"]:
                s, e = g.span(n)
                seq = fa.fetch_bytes(part["contig"], start, start + n).tobytes().decode()
                p = model.predict([seq] * batch_size)[0]
                lo, hi = max(start + s, a), min(start + e, b)
                w = taper(e - s)[lo - start - s:hi - start - s]
                num[lo - a:hi - a] += w[:, None] * p[lo - start - s:hi - start - s]
                den[lo - a:hi - a] += w
            keep = den > 0
            out[part["contig"]] = (np.flatnonzero(keep) + a,
                                   store.quantize((num[keep] / den[keep, None]).astype(np.float32)))
    return out


def test_merge_equals_direct_weighted_mean(tmp_path):
    rng = np.random.default_rng(4)
    fa = write_fasta(tmp_path / "g.fa", scaffolds_genome(rng, n_small=8))
    m = FakeModel(window_length=96)
    chunks, _, tables = predict_all(m, fa, str(tmp_path), W=9, batch_size=4)
    g = windows.geometry_from_model(m)
    for ch, t in zip(chunks, tables):
        ref = reference_merge(m, fa, ch, g, 4)
        names = t.column("chrom").to_pylist()
        for contig, (pos, codes) in ref.items():
            sel = np.array([n == contig for n in names])
            np.testing.assert_array_equal(t.column("pos").to_numpy()[sel], pos)
            got = np.stack([t.column(f).to_numpy()[sel] for f in m.features], 1)
            np.testing.assert_array_equal(got, codes)


def test_merge_memory_bounded_on_long_contig(tmp_path):
    """A 2.2 Mb contig with a short run before a 1 Mb N gap, in one chunk: the merge
    ring stays at a few windows (not the contig) and Python-side peak memory is
    the same as for a contig a quarter of the length."""
    rng = np.random.default_rng(5)
    m = FakeModel(window_length=768)
    peaks, rings = [], []
    for n in (300_000, 1_200_000):
        seq = (rand_seq(rng, 2000, "ACGT") + "N" * 10 + rand_seq(rng, 500, "ACGT") + "N" * 1_000_000
               + rand_seq(rng, n, "ACGT"))
        fa = write_fasta(tmp_path / f"g{n}.fa", [("chr", seq)])
        g = windows.geometry_from_model(m)
        _, chunks = windows.make_plan(fa, g, None, 10**7)
        tracemalloc.start()
        with Fasta(fa) as f:
            st = predict_chunk(m, f, chunks[0], str(tmp_path / f"o{n}.parquet"), batch_size=8)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        rings.append(st["merge_ring_bases"])
        assert st["rows"] == n + 2500
        assert st["merge_ring_bases"] <= 2 * gp.default_horizon(g, 8)
    assert rings[0] == rings[1]
    assert peaks[1] < 1.5 * peaks[0] + (8 << 20), peaks  # not 4x: bounded by windows in flight
    assert peaks[1] < 200 << 20


# -------------------------------------------------------------------- writer thread
class FailingWriter(store.PredictionWriter):
    calls = 0

    def write(self, pos, codes, chrom=None):
        FailingWriter.calls += 1
        if FailingWriter.calls == 3:
            raise OSError(28, "No space left on device (injected)")
        super().write(pos, codes, chrom=chrom)


def test_writer_error_surfaces_and_leaves_no_file(tmp_path, monkeypatch):
    rng = np.random.default_rng(6)
    fa = write_fasta(tmp_path / "g.fa", [(f"c{i}", rand_seq(rng, 500, "ACGT")) for i in range(20)])
    m = FakeModel(window_length=96)
    _, chunks = windows.make_plan(fa, windows.geometry_from_model(m), None, 10**6)
    monkeypatch.setattr(gp, "PredictionWriter", FailingWriter)
    FailingWriter.calls = 0
    threads = threading.active_count()
    out = tmp_path / "out" / "c0.parquet"
    with Fasta(fa) as f, pytest.raises(OSError, match="No space left"):
        predict_chunk(m, f, chunks[0], str(out), batch_size=2)
    assert FailingWriter.calls >= 3
    assert not out.exists() and os.listdir(tmp_path / "out") == []  # no partial file
    assert threading.active_count() == threads  # writer and device threads ended


def test_model_error_stops_threads_and_leaves_no_file(tmp_path):
    rng = np.random.default_rng(7)
    fa = write_fasta(tmp_path / "g.fa", [("c", rand_seq(rng, 3000, "ACGT"))])

    class Broken(FakeModel):
        n = 0

        def predict_tokens(self, tokens):
            Broken.n += 1
            if Broken.n == 4:
                raise RuntimeError("device exploded")
            return super().predict_tokens(tokens)

    m = Broken(window_length=96)
    _, chunks = windows.make_plan(fa, windows.geometry_from_model(m), None, 10**6)
    threads = threading.active_count()
    with Fasta(fa) as f, pytest.raises(RuntimeError, match="exploded"):
        predict_chunk(m, f, chunks[0], str(tmp_path / "c.parquet"), batch_size=2)
    assert [p for p in os.listdir(tmp_path) if p != "g.fa" and not p.startswith("g.fa.")] == []
    assert threading.active_count() == threads


# ---------------------------------------------------------------------- statistics
def test_stats_fields_consistent(tmp_path):
    rng = np.random.default_rng(8)
    fa = write_fasta(tmp_path / "g.fa", scaffolds_genome(rng, n_small=10))
    m = FakeModel(window_length=96)
    chunks, stats, tables = predict_all(m, fa, str(tmp_path), W=30, batch_size=4)
    for ch, st, t in zip(chunks, stats, tables):
        for k in ("windows", "computed_windows", "padded_windows", "padded_fraction", "batches", "rows",
                  "seconds", "host_s", "transfer_s", "device_s", "merge_s", "write_s", "device_idle_fraction",
                  "per_batch_ms", "merge_ring_bases", "merge_bases_per_s"):
            assert k in st, k
        assert st["rows"] == t.num_rows
        assert st["owned_bases"] == sum(b - a for a, b in (p["owned"] for p in ch["parts"]))
        assert st["computed_windows"] == st["batches"] * 4
        assert 0 <= st["padded_fraction"] < 1 and 0 <= st["device_idle_fraction"] <= 1
        assert 0 < st["device_s"] <= st["seconds"]
        assert st["device_idle_fraction"] == pytest.approx(1 - st["device_s"] / st["seconds"])
        for stage in ("host", "transfer", "device", "merge", "write"):
            total = st[f"{stage}_s"]
            assert st["per_batch_ms"][stage] == pytest.approx(1000 * total / st["batches"])
            assert 0 <= total <= st["seconds"] + 1e-6


def test_jobs_virtual_axis():
    g = windows.geometry_from_model(FakeModel(backbone="segment_borzoi", window_length=96,
                                              length_multiple=8, crop=24))
    chunk = {"parts": [{"contig": "a", "owned": [0, 100], "compute": [[-24, 96], [0, 96], [30, 96]]},
                       {"contig": "b", "owned": [50, 80], "compute": [[10, 96]]}]}
    j = Jobs.from_chunk(chunk, g)
    np.testing.assert_array_equal(j.offset, [0, 100, 130])
    np.testing.assert_array_equal(j.vlo, [0, 24, 54, 100])
    np.testing.assert_array_equal(j.vhi, [48, 72, 100, 130])
    np.testing.assert_array_equal(j.skip, [0, 0, 0, 16])
