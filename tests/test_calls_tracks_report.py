"""Calling (hysteresis, merge, min length, streaming), bigWig tracks and the HTML report."""

from __future__ import annotations

import gzip
import html
import json
import os
import re
import urllib.parse

import numpy as np
import pytest

from genoseg import calls, store, tracks
from genoseg.calls import CallParams, call_array
from genoseg.cli import main
from genoseg.features import PUBLISHED_FEATURES

FEATURES = ["exon", "splice_donor", "5UTR", "CTCF-bound"]


def write_dataset(outdir, contigs, features=FEATURES, backbone="segment_nt", **meta):
    """Build ``outdir/<backbone>/predictions`` with the store's own writer.

    ``contigs``: name -> (pos int [n], q uint8 [n, F]). Returns the dataset directory.
    """
    ddir = store.dataset_dir(str(outdir), backbone)
    store.write_arrays(ddir, list(features), backbone,
                       {name: (np.asarray(pos, np.int64), np.asarray(q, np.uint8)) for name, (pos, q) in contigs.items()},
                       overwrite=True, **meta)
    return ddir


def q_of(p):
    return np.rint(np.asarray(p, float) * 255).astype(np.uint8)


def synthetic(n=400, seed=0, gap=(150, 170)):
    """One contig with bumps in every feature and a hole (no rows) at ``gap``."""
    rng = np.random.default_rng(seed)
    pos = np.arange(n)
    pos = pos[(pos < gap[0]) | (pos >= gap[1])]
    x = np.arange(n)
    prob = np.zeros((n, len(FEATURES)))
    for j in range(len(FEATURES)):
        for c in rng.integers(0, n, 8):
            w = rng.integers(3, 25)
            prob[:, j] += 0.95 * np.exp(-0.5 * ((x - c) / w) ** 2)
    prob = np.clip(prob + rng.uniform(0, 0.1, prob.shape), 0, 1)
    return pos, q_of(prob[pos])


# ------------------------------------------------------------------------------ calling
def ints(s, e):
    return list(zip(s.tolist(), e.tolist()))


def test_hysteresis_extends_to_low_flanks():
    p = np.array([0, .2, .35, .4, .8, .9, .45, .31, .1, 0, .45, .4, 0, .6, .6])
    s, e, mean, mx = call_array(np.arange(len(p)), p, CallParams(0.5, 0.3))
    # bump 4-5 above HIGH extends left over .35,.4 (2-3) and right over .45,.31 (6-7);
    # .45,.4 at 10-11 never reach HIGH; .6,.6 at 13-14 is a segment reaching the end.
    assert ints(s, e) == [(2, 8), (13, 15)]
    assert mx[0] == pytest.approx(0.9, abs=1e-6)
    assert mean[0] == pytest.approx(np.mean(p[2:8]), abs=1e-6)
    # plain threshold (LOW = HIGH)
    s, e, *_ = call_array(np.arange(len(p)), p, CallParams(0.5, 0.5))
    assert ints(s, e) == [(4, 6), (13, 15)]


def test_threshold_on_255_grid_is_inclusive():
    p = np.array([50, 51, 51, 50]) / 255.0
    s, e, *_ = call_array(np.arange(4), p.astype(np.float32), CallParams(0.2, 0.2))
    assert ints(s, e) == [(1, 3)]


def test_min_length_and_merge_gap():
    p = np.zeros(60)
    p[5:7] = .9      # 2 bp
    p[10:20] = .9    # 10 bp; gap 3 to the 2 bp one
    p[24:30] = .9    # gap 4 bp
    p[40:41] = .9    # 1 bp alone
    pos = np.arange(60)
    s, e, *_ = call_array(pos, p, CallParams(0.5, 0.3, min_length=1, merge_gap=0))
    assert ints(s, e) == [(5, 7), (10, 20), (24, 30), (40, 41)]
    s, e, *_ = call_array(pos, p, CallParams(0.5, 0.3, min_length=3, merge_gap=0))
    assert ints(s, e) == [(10, 20), (24, 30)]
    s, e, *_ = call_array(pos, p, CallParams(0.5, 0.3, min_length=1, merge_gap=3))
    assert ints(s, e) == [(5, 20), (24, 30), (40, 41)]
    s, e, mean, _ = call_array(pos, p, CallParams(0.5, 0.3, min_length=2, merge_gap=4))
    assert ints(s, e) == [(5, 30)]
    assert mean[0] == pytest.approx(0.9, abs=1e-6)  # mean over called bases only


def test_missing_base_breaks_segment_and_blocks_merge():
    pos = np.array([0, 1, 2, 3, 5, 6, 7, 20, 21])     # 4 and 8..19 missing
    p = np.array([.9, .9, .9, .9, .9, .9, 0, .9, .9])
    s, e, *_ = call_array(pos, p, CallParams(0.5, 0.3, merge_gap=0))
    assert ints(s, e) == [(0, 4), (5, 7), (20, 22)]
    # a gap of missing bases is never bridged, whatever merge_gap says
    s, e, *_ = call_array(pos, p, CallParams(0.5, 0.3, merge_gap=100))
    assert ints(s, e) == [(0, 4), (5, 7), (20, 22)]


@pytest.mark.parametrize("batch", [1, 2, 3, 7, 13])
def test_batching_invariance_in_memory(batch):
    pos, q = synthetic(500, seed=3)
    p = q[:, 0] / np.float32(255)
    for prm in (CallParams(0.5, 0.3), CallParams(0.6, 0.2, min_length=5, merge_gap=12)):
        ref = call_array(pos, p, prm)
        got = call_array(pos, p, prm, batch_rows=batch)
        for a, b in zip(ref, got):
            np.testing.assert_allclose(a, b)


def read_text(path):
    with gzip.open(path, "rt") as fh:
        return fh.read()


def test_call_dataset_batches_bed_tabix_gff(tmp_path):
    import pysam

    odd = "chr 1/<script>&;=%"
    ddir = write_dataset(tmp_path / "out", {"chr2": synthetic(300, seed=1), odd: synthetic(400, seed=2)})
    a = calls.call_dataset(ddir, str(tmp_path / "a"), batch_rows=7)
    b = calls.call_dataset(ddir, str(tmp_path / "b"), batch_rows=1_000_000)
    assert a["features"] == b["features"]
    assert sum(v["count"] for v in a["features"].values()) > 10
    names = sorted(os.listdir(tmp_path / "a"))
    assert names == sorted(os.listdir(tmp_path / "b"))
    for f in FEATURES:
        assert f"{f}.bed.gz" in names and f"{f}.bed.gz.tbi" in names
        assert read_text(tmp_path / "a" / f"{f}.bed.gz") == read_text(tmp_path / "b" / f"{f}.bed.gz")
    # every output stays in the calls dir
    for n in names:
        assert os.path.dirname(os.path.realpath(tmp_path / "a" / n)) == os.path.realpath(tmp_path / "a")

    bed = tmp_path / "a" / "exon.bed.gz"
    with open(bed, "rb") as fh:
        assert fh.read(4) == b"\x1f\x8b\x08\x04"  # BGZF (gzip with extra field)
    rows = [ln.split("\t") for ln in read_text(bed).splitlines()]
    assert all(r[3] == "exon" and r[5] == "." and 0 <= int(r[4]) <= 1000 for r in rows)
    with pysam.TabixFile(str(bed)) as tbx:
        assert set(tbx.contigs) <= {"chr2", odd}
        got = [ln.split("\t") for ln in tbx.fetch(odd, 0, 400)]
    assert got == [r for r in rows if r[0] == odd]

    gff = (tmp_path / "a" / "calls.gff3").read_text().splitlines()
    assert gff[0] == "##gff-version 3"
    esc = "chr%201%2F%3Cscript%3E%26%3B%3D%25"
    assert f"##sequence-region {esc} 1 400" in gff
    feats = [ln.split("\t") for ln in gff if not ln.startswith("#")]
    assert all(len(x) == 9 for x in feats)
    ids = [dict(kv.split("=") for kv in x[8].split(";"))["ID"] for x in feats]
    assert len(ids) == len(set(ids)) == sum(v["count"] for v in a["features"].values())
    # GFF3 = BED start + 1, same end
    bed_exon = sorted((r[0], int(r[1]), int(r[2])) for r in rows)
    gff_exon = sorted((urllib.parse.unquote(x[0]), int(x[3]) - 1, int(x[4])) for x in feats if x[2] == "exon")
    assert bed_exon == gff_exon
    assert not any(odd in ln for ln in gff)


def test_call_cli_overrides_and_errors(tmp_path, capsys):
    ddir = write_dataset(tmp_path / "out", {"chr1": synthetic(300, seed=5)})
    out = tmp_path / "calls"
    # missing dataset
    assert main(["call", "--predictions", str(tmp_path / "nope"), "--outdir", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not out.exists()
    # unknown feature
    assert main(["call", "--predictions", ddir, "--outdir", str(out), "--threshold", "gene=0.5:0.2"]) == 2
    err = capsys.readouterr().err
    assert "unknown feature" in err and "'gene'" in err and err.count("\n") == 1
    assert not out.exists() and not [p for p in os.listdir(tmp_path) if "partial" in p]
    # bad values
    assert main(["call", "--predictions", ddir, "--outdir", str(out), "--threshold", "exon=0.2:0.5"]) == 2
    assert main(["call", "--predictions", ddir, "--outdir", str(out), "--min-length", "exon=x"]) == 2
    capsys.readouterr()
    # works, then refuses to overwrite
    args = ["call", "--predictions", ddir, "--outdir", str(out), "--threshold", "all=0.7:0.4",
            "--min-length", "exon=5", "--merge-gap", "5UTR=3", "--features", "exon,5UTR"]
    assert main(args) == 0
    s = calls.read_summary(str(out))
    assert s["features"]["exon"]["params"] == {"high": 0.7, "low": 0.4, "min_length": 5, "merge_gap": 10}
    assert s["features"]["5UTR"]["params"]["merge_gap"] == 3
    assert sorted(s["features"]) == ["5UTR", "exon"]
    before = (out / "exon.bed.gz").read_bytes()
    assert main(args[:-2] + ["--threshold", "exon=0.9"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "exon.bed.gz").read_bytes() == before
    assert main(args[:-2] + ["--threshold", "exon=0.9", "--overwrite"]) == 0
    s = calls.read_summary(str(out))
    assert s["features"]["exon"]["params"]["high"] == 0.9 and len(s["features"]) == len(FEATURES)


# ------------------------------------------------------------------------------ tracks
def test_tracks_values_and_gaps(tmp_path):
    import pyBigWig

    odd = "chr 1/<x>"
    c1, c2 = synthetic(400, seed=7, gap=(100, 130)), synthetic(250, seed=8, gap=(10, 11))
    c2[1][40:200] = 0    # flat stretch: written as runs (bedGraph entries); noise as fixed steps
    c2[1][60:70, 0] = 200
    ddir = write_dataset(tmp_path / "out", {odd: c1, "chrM": c2})
    fai = tmp_path / "g.fa.fai"
    fai.write_text(f"chrM\t260\t6\t60\t61\nchrEmpty\t50\t300\t60\t61\n{odd}\t420\t400\t60\t61\n")
    res = tracks.write_tracks(ddir, str(tmp_path / "tr"), str(fai), batch_rows=9)
    assert res["bases"] == len(c1[0]) + len(c2[0])
    for j, f in enumerate(FEATURES):
        bw = pyBigWig.open(str(tmp_path / "tr" / f"{f}.bw"))
        assert list(bw.chroms().items()) == [("chrM", 260), ("chrEmpty", 50), (odd, 420)]
        for name, (pos, q) in ((odd, c1), ("chrM", c2)):
            size = bw.chroms()[name]
            vals = np.array(bw.values(name, 0, size))
            dense = np.full(size, np.nan)
            dense[pos] = q[:, j] / 255.0
            assert np.array_equal(np.isnan(vals), np.isnan(dense))   # gaps empty
            ok = ~np.isnan(dense)
            assert np.max(np.abs(vals[ok] - dense[ok])) <= 1 / 255 + 1e-6
        assert bw.intervals("chrEmpty") is None
        bw.close()
    # two worker processes give the same values
    tracks.write_tracks(ddir, str(tmp_path / "trw"), str(fai), workers=2)
    for f in FEATURES:
        a, b = pyBigWig.open(str(tmp_path / "tr" / f"{f}.bw")), pyBigWig.open(str(tmp_path / "trw" / f"{f}.bw"))
        assert np.array_equal(np.array(a.values(odd, 0, 420)), np.array(b.values(odd, 0, 420)), equal_nan=True)
        a.close(), b.close()
    # existing output is not overwritten
    assert main(["tracks", "--predictions", ddir, "--outdir", str(tmp_path / "tr"), "--fai", str(fai)]) == 2
    # without a .fai: contigs of the dataset, last position + 1
    assert main(["tracks", "--predictions", ddir, "--outdir", str(tmp_path / "tr2")]) == 0
    bw = pyBigWig.open(str(tmp_path / "tr2" / "exon.bw"))
    assert bw.chroms() == {odd: 400, "chrM": 250}
    bw.close()
    # a .fai that lacks a contig of the predictions is refused
    fai.write_text("chrM\t260\t6\t60\t61\n")
    assert main(["tracks", "--predictions", ddir, "--outdir", str(tmp_path / "tr3"), "--fai", str(fai)]) == 2
    assert not (tmp_path / "tr3").exists()


# ------------------------------------------------------------------------------ report
def test_report_self_contained_and_escaped(tmp_path):
    from genoseg import report

    odd = "<script>alert(1)</script>"
    out = tmp_path / "out"
    ddir = write_dataset(out, {odd: synthetic(600, seed=11), "chr2": synthetic(300, seed=12)},
                         device="gpu: <H100> 80 GiB")
    bdir = os.path.dirname(ddir)
    s = calls.call_dataset(ddir, os.path.join(bdir, "calls"))
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"fasta": "/x/<genome>.fa", "skipped": [
        {"contig": odd, "start": 150, "end": 170, "reason": "N run"}]}))
    ev = tmp_path / "eval.tsv"
    ev.write_text("feature\tprecision\trecall\tf1\nexon\t0.5\t0.25\t0.3333\n")
    timings = tmp_path / "t.json"
    timings.write_text(json.dumps({"predict": 12.5, "call": 0.4}))
    html_path = tmp_path / "report.html"
    assert main(["report", "--outdir", bdir, "--out", str(html_path), "--plan", str(plan),
                 "--evaluation", str(ev), "--timings", str(timings), "--region", "chr2:1-300"]) == 0
    doc = html_path.read_text()
    assert doc.startswith("<!DOCTYPE html>") and "<svg" in doc and "<style>" in doc
    assert not re.search(r'(src|href)\s*=\s*["\']?\s*(https?:)?//', doc, re.I)
    assert "<script" not in doc.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in doc and "/x/&lt;genome&gt;.fa" in doc
    for f, v in s["features"].items():  # per-feature counts in the calls table
        assert re.search(rf"{re.escape(html.escape(f))}</td><td class=\"n\">{v['count']:,}</td>", doc)
    assert "<td>device</td><td>gpu: &lt;H100&gt; 80 GiB</td>" in doc  # from _genoseg.json
    assert "N run" in doc and "0.333" in doc and "predict" in doc and "chr2:1-300" in doc
    # default regions (most calls), and refusal to overwrite
    assert main(["report", "--outdir", bdir, "--out", str(html_path)]) == 2
    report.write_report(bdir, str(html_path), overwrite=True)
    doc2 = html_path.read_text()
    assert "Regions with the most calls" in doc2 and doc2.count("<svg") > len(FEATURES)
    # missing directory is a user error
    assert main(["report", "--outdir", str(tmp_path / "nope"), "--out", str(tmp_path / "r2.html")]) == 2
    assert not (tmp_path / "r2.html").exists()


def test_report_names_every_device_that_predicted(tmp_path):
    """Chunks run on two machines: the report's device is the dataset index's list, not
    the first file's footer."""
    from genoseg import report

    files = []
    for i, (name, dev) in enumerate([("c1", "gpu: A100"), ("c2", "gpu: H100")]):
        pos, q = synthetic(300, seed=i)
        meta = store.base_metadata(FEATURES, "segment_nt", plan_id="p", chunk=i, device=dev)
        with store.PredictionWriter(str(tmp_path / f"c{i}.parquet"), FEATURES, meta) as w:
            w.write(pos, q, chrom=name)
        files.append(str(tmp_path / f"c{i}.parquet"))
    plan = {"plan_id": "p", "n_chunks": 2, "contigs": [{"name": "c1"}, {"name": "c2"}]}
    store.write_dataset(store.dataset_dir(str(tmp_path / "out"), "segment_nt"), plan, files)
    bdir = str(tmp_path / "out" / "segment_nt")
    report.write_report(bdir, str(tmp_path / "r.html"))
    assert "<td>device</td><td>gpu: A100; gpu: H100</td>" in (tmp_path / "r.html").read_text()


def test_parse_region():
    from genoseg.report import parse_region

    assert parse_region("chrUn:KI27:1,001-2,000") == ("chrUn:KI27", 1000, 2000)
    with pytest.raises(Exception):
        parse_region("chr1:10-5")


# ------------------------------------------------------------- streaming engine
def reference_calls(pos, q, prm):
    """Plain per-base loops over one contig: the definition in genoseg.calls' docstring."""
    lo, hi = calls.code_cutoff(prm.low), calls.code_cutoff(prm.high)
    raw, i, n = [], 0, len(pos)
    while i < n:
        if q[i] < lo:
            i += 1
            continue
        j = i
        while j + 1 < n and q[j + 1] >= lo and pos[j + 1] == pos[j] + 1:
            j += 1
        if max(q[i:j + 1]) >= hi:
            raw.append([int(pos[i]), int(pos[j]) + 1, int(q[i:j + 1].sum()), j - i + 1, int(max(q[i:j + 1])), i, j])
        i = j + 1
    merged = []
    for r in raw:
        if merged:
            m = merged[-1]
            contiguous = pos[r[5]] - pos[m[6]] == r[5] - m[6]  # no missing base between
            if r[0] - m[1] <= prm.merge_gap and contiguous:
                m[1], m[2], m[3], m[4], m[6] = r[1], m[2] + r[2], m[3] + r[3], max(m[4], r[4]), r[6]
                continue
        merged.append(list(r))
    return [tuple(m[:5]) for m in merged if m[1] - m[0] >= prm.min_length]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_segment_stream_matches_reference_any_framing(seed):
    """Several features and contigs with holes, fed in random frame sizes that cut
    contigs anywhere: same segments as the per-base reference."""
    rng = np.random.default_rng(seed)
    prms = [CallParams(0.5, 0.3, 1, 0), CallParams(0.6, 0.2, 5, 7), CallParams(0.5, 0.5, 1, 0),
            CallParams(0.4, 0.1, 30, 40), CallParams(0.0, 0.0, 1, 3)]
    contigs = []
    for c in range(4):
        n = int(rng.integers(1, 400))
        pos = np.sort(rng.choice(np.arange(n + 40), n, replace=False)).astype(np.int64)
        smooth = rng.random((len(prms), n)).cumsum(axis=1) % 1.0 if c % 2 else rng.random((len(prms), n))
        contigs.append((pos, np.rint(smooth * 255).astype(np.uint8)))
    cid = np.concatenate([np.full(p.size, c, np.int32) for c, (p, _) in enumerate(contigs)])
    pos = np.concatenate([p for p, _ in contigs])
    codes = np.concatenate([q for _, q in contigs], axis=1)
    stream = calls.SegmentStream(prms)
    out, i = [], 0
    while i < len(pos):
        k = int(rng.integers(1, 60))
        out.append(stream.feed(pos[i:i + k], codes[:, i:i + k], cid[i:i + k]))
        i += k
    got = calls._seg_cat(out + [stream.finish()])
    for f, prm in enumerate(prms):
        mine = sorted((int(c), int(s), int(e), int(v), int(n), int(m)) for c, s, e, v, n, m in zip(
            *(got[k][got["f"] == f] for k in ("cid", "start", "end", "vsum", "n", "vmax"))))
        ref = sorted((c,) + r for c, (p, qs) in enumerate(contigs) for r in reference_calls(p, qs[f], prm))
        assert mine == ref, (f, prm)


def file_bytes(d):
    return {n: (d / n).read_bytes() for n in sorted(os.listdir(d))}


def bigwig_content(d):
    """What a reader sees in each bigWig of ``d``: header, chromosomes, every interval and
    zoom-level statistics. (Not the bytes: ISA-L's level-1 deflate, used for the larger
    blocks, gives other but equivalent bytes in a few percent of processes.)"""
    import pyBigWig

    out = {}
    for name in sorted(os.listdir(d)):
        if name.endswith(".bw"):
            bw = pyBigWig.open(str(d / name))
            chroms = bw.chroms()
            out[name] = (bw.header(), chroms, {
                c: (bw.intervals(c), [bw.stats(c, 0, n, type=t, nBins=k) for t in ("mean", "min", "max", "coverage")
                                      for k in (1, 4)]) for c, n in chroms.items()})
            bw.close()
    return out


def test_threads_give_identical_calls_and_tracks(tmp_path, monkeypatch):
    contigs = {f"chr{i}": synthetic(300 + 50 * i, seed=20 + i) for i in range(5)}
    ddir = write_dataset(tmp_path / "out", contigs)
    from genoseg import parallel

    monkeypatch.setattr(parallel, "MIN_ROWS_PER_PROCESS", 1)  # several processes even for tiny data
    one = calls.call_dataset(ddir, str(tmp_path / "c1"), threads=1, batch_rows=97)
    three = calls.call_dataset(ddir, str(tmp_path / "c3"), threads=3)
    assert one["features"] == three["features"] and one["contigs"] == three["contigs"]
    a, b = file_bytes(tmp_path / "c1"), file_bytes(tmp_path / "c3")
    assert a.keys() == b.keys() and {k for k in a if a[k] != b[k]} == {"summary.json"}
    tracks.write_tracks(ddir, str(tmp_path / "t1"), threads=1)
    tracks.write_tracks(ddir, str(tmp_path / "t2"), threads=2)
    t1, t2 = file_bytes(tmp_path / "t1"), file_bytes(tmp_path / "t2")
    assert t1.keys() == t2.keys() and sum(n.endswith(".bw") for n in t1) >= 2
    assert bigwig_content(tmp_path / "t1") == bigwig_content(tmp_path / "t2")
    # the CLI takes --threads (and the deprecated --workers) and refuses 0
    assert main(["call", "--predictions", ddir, "--outdir", str(tmp_path / "c2"), "--threads", "2"]) == 0
    assert file_bytes(tmp_path / "c2")["calls.gff3"] == a["calls.gff3"]
    assert main(["tracks", "--predictions", ddir, "--outdir", str(tmp_path / "t3"), "--workers", "2"]) == 0


def test_contigs_named_like_bed_comments_are_read_back(tmp_path):
    """BED tools skip lines starting with '#', 'track' or 'browser'; genoseg's readers
    must not (a contig track_7 used to score recall 0 against identical truth)."""
    from genoseg.evaluate import evaluate_calls

    names = ["#1", "track_7", "browser_2", "chr1"]
    ddir = write_dataset(tmp_path / "out", {n: synthetic(300, seed=30 + i) for i, n in enumerate(names)})
    calls.call_dataset(ddir, str(tmp_path / "calls"))
    chroms, s, e, _ = calls.read_bed(str(tmp_path / "calls" / "exon.bed.gz"))
    assert set(chroms) == set(names)
    truth = tmp_path / "truth.gff3"
    with open(truth, "w") as fh:
        fh.write("##gff-version 3\n")
        for c, a, b in zip(chroms, s.tolist(), e.tolist()):
            fh.write(f"{calls.gff_escape_seqid(c)}\tx\texon\t{a + 1}\t{b}\t.\t.\t.\t.\n")
    ev = evaluate_calls(str(truth), str(tmp_path / "calls"), features=["exon"])
    assert ev.loc[0, "recall"] == 1.0 and ev.loc[0, "precision"] == 1.0


def write_noise_dataset(outdir, contig, length, features=PUBLISHED_FEATURES, seed=0):
    """One contig of random codes (the worst case for calling: millions of segments with
    the default parameters)."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, (length, len(features)), dtype=np.uint8)
    return write_dataset(outdir, {contig: (np.arange(length, dtype=np.int64), codes)}, features)


# VmHWM, not ru_maxrss: after fork + exec ru_maxrss starts from the parent's RSS
PEAK = """
import sys
from genoseg.cli import main
rc = main(sys.argv[1:])
hwm = [ln for ln in open("/proc/self/status") if ln.startswith("VmHWM:")][0].split()[1]
print(int(hwm) // 1024, rc)
"""


def peak_mb(*args):
    """Run ``genoseg ARGS`` in a child process; its peak RSS in MB."""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-c", PEAK, *map(str, args)], capture_output=True, text=True,
                         timeout=900, env=dict(os.environ, GENOSEG_THREADS="1"))
    assert res.returncode == 0, res.stderr[-2000:]
    mb, rc = map(int, res.stdout.split()[-2:])
    assert rc == 0, res.stderr[-2000:]
    return mb


@pytest.mark.slow
def test_call_and_report_20mb_noise_bounded_memory(tmp_path):
    ddir = write_noise_dataset(tmp_path / "out", "chrN", 20_000_000)
    bdir = os.path.dirname(ddir)
    mb = peak_mb("call", "--predictions", ddir, "--outdir", os.path.join(bdir, "calls"), "--threads", 1)
    assert mb < 700, f"call peaked at {mb} MB"
    s = calls.read_summary(os.path.join(bdir, "calls"))
    assert s["bases"] == 20_000_000 and sum(v["count"] for v in s["features"].values()) > 5_000_000
    mb = peak_mb("report", "--outdir", bdir, "--out", tmp_path / "report.html")
    assert mb < 700, f"report peaked at {mb} MB"
    doc = (tmp_path / "report.html").read_text()
    assert f"{s['features']['splice_donor']['count']:,}" in doc and doc.count("<svg") > 14


@pytest.mark.parametrize("gaps", ["none", "few", "chunk_edges", "many"])
def test_bigwig_layout_matches_the_per_base_definition(gaps):
    """The bigWig row structure is computed from segment bounds (stretches of
    consecutive positions found by checking chunks of rows end to end); it must equal
    the per-base definition: an entry starts at a contig start, after a missing base or
    at a cell start; cells and first-level zoom bins start at a contig start or where
    the aligned tile changes."""
    from genoseg.bigwig import CELL, Layout

    rng = np.random.default_rng({"none": 1, "few": 2, "chunk_edges": 3, "many": 4}[gaps])
    pieces, lens = [], []
    for length, offset in [(300_000, 70_000), (5, 3), (150_000, 0), (9_000, 1)]:
        pos = offset + np.arange(length)
        if gaps == "few":
            pos = pos[(pos % 65_537 != 11) & ((pos < 100_000) | (pos >= 100_050))]
        elif gaps == "chunk_edges":  # a missing base right at the rows where 4096-row chunks meet
            pos = np.delete(pos, [i for i in (4096, 8191, 3 * 4096 + 1) if i < pos.size])
        elif gaps == "many":
            pos = pos[rng.random(pos.size) < 0.6]
        pieces.append(pos)
        lens.append(pos.size)
    pos = np.concatenate(pieces)
    lay = Layout(pos, np.array([4, 0, 2, 1]), np.array(lens), 128)

    contig = np.zeros(pos.size, bool)
    contig[np.cumsum(lens) - lens] = True

    def starts(cut):
        cut = cut | contig
        return np.flatnonzero(cut)

    jump = np.concatenate(([True], pos[1:] != pos[:-1] + 1))
    tile = lambda unit: np.concatenate(([True], pos[1:] // unit != pos[:-1] // unit))  # noqa: E731
    assert np.array_equal(lay.block_row, starts(jump | tile(CELL)))
    assert np.array_equal(lay.cell_row, starts(tile(CELL)))
    assert np.array_equal(lay.bin_row, starts(tile(128)))
    assert np.array_equal(lay.seg_row, starts(jump))
    assert np.array_equal(lay.bin_count, np.diff(np.append(lay.bin_row, pos.size)))
    assert np.array_equal(lay.bin_cid, np.repeat([4, 0, 2, 1], lens)[lay.bin_row])
    assert np.array_equal(lay.bin_end, pos[np.append(lay.bin_row[1:], pos.size) - 1] + 1)


def _write_test_bigwig(tmp_path):
    """A bigWig from genoseg's vectorised writer with a chromosome tree of 300 contigs
    (several B+ tree nodes), > 256 data blocks (a two-level R-tree), bedGraph and
    fixed-step sections, holes. Returns ``(path, header, dense values of chrBig, small
    scaffolds' codes)``."""
    from genoseg.bigwig import BigWigWriter, Layout

    rng = np.random.default_rng(5)
    big = 3_000_000
    header = [(f"scaffold_{i}", 50 + i) for i in range(300)] + [("chrBig", big + 1000)]
    q = np.zeros(big, np.uint8)
    cell = 1 << 16  # bedGraph or fixed-step is chosen per cell
    q[:16 * cell] = rng.integers(0, 256, 16 * cell)                         # noise: fixed-step
    q[16 * cell:] = np.repeat(rng.integers(0, 256, big // 20), 20)[:big - 16 * cell]  # runs of 20: bedGraph
    q[32 * cell:33 * cell] = np.repeat(rng.integers(0, 256, cell // 4), 5)[:cell]     # runs of 5: fixed-step
    pos = np.arange(big, dtype=np.int64)
    keep = (pos < 1_500_000) | (pos >= 1_500_100)                        # a hole
    pos, q = pos[keep], q[keep]
    small = {i: rng.integers(0, 256, 10 + i % 7).astype(np.uint8) for i in range(0, 300, 37)}
    path = str(tmp_path / "t.bw")
    w = BigWigWriter(path, header)
    r0 = w.header.reductions[0]
    # the small scaffolds in one batch (many contigs), then chrBig in batches that cut
    # cells and zoom bins anywhere
    ids = np.array(list(small), np.int64)
    w.add(Layout(np.concatenate([np.arange(3, 3 + v.size) for v in small.values()]), ids,
                 np.array([v.size for v in small.values()]), r0), np.concatenate(list(small.values())))
    entries = 0
    for a in range(0, pos.size, 250_001):
        b = min(a + 250_001, pos.size)
        entries += w.add(Layout(pos[a:b], np.array([300]), np.array([b - a]), r0), q[a:b])
    w.close()
    # one entry per base of noise and of runs of 5, one per run of 20 (fewer where two
    # runs have one value, more where a cell, batch or the hole cuts a run)
    fixed = 17 * cell
    runs20 = (pos.size - fixed) / 20
    assert fixed + 0.97 * runs20 <= entries <= fixed + runs20 + big // cell + pos.size // 250_001 + 4
    assert not [f for f in os.listdir(tmp_path) if "zoom" in f]
    dense = np.full(big + 1000, np.nan)
    dense[pos] = q / np.float32(255)
    return path, header, dense, small


def test_bigwig_writer_read_back_by_pybigwig(tmp_path):
    """genoseg's bigWig (:func:`_write_test_bigwig`) read by libBigWig (pyBigWig):
    values, exact and zoom-level statistics, the header's summary."""
    import pyBigWig

    path, header, dense, small = _write_test_bigwig(tmp_path)
    big = 3_000_000
    bw = pyBigWig.open(path)
    assert list(bw.chroms().items()) == header
    got = np.array(bw.values("chrBig", 0, big + 1000))
    assert np.array_equal(np.isnan(got), np.isnan(dense))
    assert np.allclose(got[~np.isnan(got)], dense[~np.isnan(dense)], atol=1e-7)
    for i, v in small.items():
        assert np.allclose(bw.values(f"scaffold_{i}", 3, 3 + v.size), v / np.float32(255), atol=1e-7)
    assert bw.intervals("scaffold_1") is None
    for a, b in [(0, big), (123_457, 2_876_543), (1_499_000, 1_501_000)]:
        ref = np.nanmean(dense[a:b])
        assert bw.stats("chrBig", a, b, type="mean", exact=True)[0] == pytest.approx(ref, rel=1e-5)
        assert bw.stats("chrBig", a, b, type="max", exact=True)[0] == pytest.approx(np.nanmax(dense[a:b]), rel=1e-6)
    # zoom levels (exact=False): bins of 128 bp x 4^k; aligned queries are exact
    assert bw.stats("chrBig", 0, 2_097_152, type="mean", nBins=4)[0] == pytest.approx(
        np.nanmean(dense[0:524_288]), rel=1e-4)
    assert bw.stats("chrBig", 0, 2_097_152, type="coverage", nBins=4)[2] == pytest.approx(
        np.mean(~np.isnan(dense[1_048_576:1_572_864])), rel=1e-6)
    h = bw.header()
    allv = np.concatenate([dense[~np.isnan(dense)]] + [v / np.float32(255) for v in small.values()])
    assert h["nBasesCovered"] == allv.size and h["nLevels"] >= 5
    assert h["sumData"] == int(allv.sum(dtype=np.float64))  # pyBigWig truncates it to an integer
    assert h["maxVal"] == pytest.approx(allv.max()) and h["minVal"] == pytest.approx(allv.min())
    bw.close()


def test_bigwig_writer_read_by_ucsc_library(tmp_path):
    """The same file read by the UCSC genome browser's own library (kent source, through
    pybbi): chromosome sizes, every value, the zoom-level summaries the browser draws
    zoomed out (mean, max, coverage over aligned bins), the file's total summary."""
    bbi = pytest.importorskip("bbi", reason="pybbi (the test extra) reads bigWig with the UCSC library")

    path, header, dense, small = _write_test_bigwig(tmp_path)
    n = header[-1][1]
    with bbi.open(path) as f:
        assert f.chromsizes == dict(header) and f.zooms[0] == 128 and len(f.zooms) >= 5
        got = f.fetch("chrBig", 0, n, missing=np.nan)
        assert np.array_equal(got, dense.astype(np.float32), equal_nan=True)
        for i, v in small.items():
            assert np.array_equal(f.fetch(f"scaffold_{i}", 3, 3 + v.size), v / np.float32(255))
        # 512-bp bins over 2 Mb: summaries from the zoom level of 512 bp
        bins = dense[:2_097_152].reshape(-1, 512)
        with np.errstate(invalid="ignore"):
            want_mean, want_max = np.nanmean(bins, axis=1), np.nanmax(bins, axis=1)
        assert np.allclose(f.fetch("chrBig", 0, 2_097_152, bins=4096, summary="mean"), want_mean,
                           rtol=1e-5, equal_nan=True)
        assert np.allclose(f.fetch("chrBig", 0, 2_097_152, bins=4096, summary="max"), want_max, equal_nan=True)
        cov = f.fetch("chrBig", 0, 2_097_152, bins=4096, summary="cov")
        assert np.allclose(cov, np.mean(~np.isnan(bins), axis=1))
        s = f.info["summary"]
        allv = np.concatenate([dense[~np.isnan(dense)]] + [v / np.float32(255) for v in small.values()])
        assert s["basesCovered"] == allv.size and s["max"] == pytest.approx(allv.max())
        assert s["sum"] == pytest.approx(allv.sum(dtype=np.float64), rel=1e-7)  # codes / 255, summed exactly


def _segments(rows):
    from genoseg import textout

    rec = np.zeros(len(rows), textout.SEG_DTYPE)
    for name, col in zip(("cid", "start", "end", "qsum", "n", "qmax"), zip(*rows)):
        rec[name] = col
    return rec


def test_text_lines_match_python_formatting():
    """The vectorised line builder writes what Python's formatting writes: numbers of
    every digit count (0, the 4-digit group edges 9999/10000, past 2^32), table fields
    repeated in a line, a table field with one value per piece and mixed values, over
    many cache-sized pieces; and its line lengths are those of the lines."""
    from genoseg import textout

    rng = np.random.default_rng(5)
    edges = np.array([0, 1, 9, 10, 99, 100, 999, 1000, 9999, 10000, 10001, 99999, 100000, 10 ** 8 - 1, 10 ** 8,
                      100010001, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 7, 10 ** 15 + 3], np.int64)
    n = 60_000
    x = np.concatenate([edges, 10 ** rng.integers(0, 12, n - edges.size) + rng.integers(0, 10, n - edges.size)])
    y = rng.integers(0, 10, n)  # one digit
    names = ["chrA", "s", "scaffold_10", "x" * 40]
    cid = np.repeat(rng.integers(0, len(names), 6), -(-n // 6))[:n]  # long runs of one contig
    table = textout.Table(names)
    for big in (False, True):
        xs = x if big else x % 10 ** 7
        fields = [(table, cid), b"\t", xs, b"-", y, b"\t", (table, cid), b";n=", xs, b"\n"]
        expect = [f"{names[c]}\t{a}-{b}\t{names[c]};n={a}\n" for c, a, b in zip(cid.tolist(), xs.tolist(), y.tolist())]
        pieces = list(textout.iter_lines(fields, n))
        assert len(pieces) > 10
        assert b"".join(p.tobytes() for p in pieces) == "".join(expect).encode()
        assert textout.line_lengths(fields, n).tolist() == [len(e) for e in expect]


def test_bed_writer_and_tabix_index_match_htslib(tmp_path):
    """genoseg's own BGZF writer and .tbi: the text equals per-line formatting, gzip and
    htslib read it, and tabix queries through its index equal those through the index
    htslib builds for the same file (many BGZF blocks, spans over every bin level and
    many 16 kb windows, a contig without segments, positions up to 2^29)."""
    import pysam

    from genoseg import textout

    rng = np.random.default_rng(3)
    rows = []
    small, large = [1] * 5 + [7] * 5 + [300] * 5 + [20_000], [1, 300, 20_000, 5_000_000, 80_000_000]
    for cid, length, spans, start in ((0, 20_000_000, small, 0), (2, 600_000_000, large, 250_000),
                                      (3, 50_000, small, 0)):  # contig 1: none
        while True:
            start += int(rng.integers(0, 300))
            span = int(rng.choice(spans))
            end = min(start + span, length, textout.TBI_MAX)
            if start >= end:
                break
            n = int(rng.integers(1, end - start + 1))
            rows.append((cid, start, end, int(rng.integers(0, 255 * n + 1)), n, int(rng.integers(0, 256))))
            start = end + int(rng.integers(0, 50))
    rows.append((3, 0, 1, 0, 1, 0))  # a zero score, the smallest positions
    rows.sort(key=lambda r: (r[0], r[1]))
    seg = tmp_path / "x.seg"
    rec = _segments(rows)
    for k in range(0, rec.size, 4000):  # the writer reads the segment file in blocks
        textout.append_segments(str(seg), rec[k:k + 4000])
    names = ["chrA", "chrEmpty", "chrBig", "chr 4/x"]
    ours = tmp_path / "ours.bed.gz"
    monkey_block = textout.BLOCK
    try:
        textout.BLOCK = 5000
        textout.write_bed_gz(str(seg), str(ours), names, "exon")
    finally:
        textout.BLOCK = monkey_block
    scores = textout.milli_score(rec["qsum"], rec["n"])
    expect = "".join(f"{names[c]}\t{s}\t{e}\texon\t{m}\t.\n"
                     for (c, s, e, *_), m in zip(rows, scores.tolist()))
    text = read_text(ours)
    assert text == expect and len(expect) > 3 * textout.BGZF_BLOCK
    ref = tmp_path / "ref.bed.gz"
    ref.write_bytes(ours.read_bytes())
    pysam.tabix_index(str(ref), preset="bed", force=True)
    with pysam.TabixFile(str(ours)) as a, pysam.TabixFile(str(ref)) as b:
        assert a.contigs == b.contigs == ["chrA", "chrBig", "chr 4/x"]
        for c in a.contigs:
            assert list(a.fetch(c)) == list(b.fetch(c))
        for _ in range(400):
            c = a.contigs[int(rng.integers(0, 3))]
            lo = int(rng.integers(0, textout.TBI_MAX))
            if rng.random() < 0.5:
                lo = int(rng.integers(0, 400_000))
            hi = lo + int(rng.choice([1, 500, 40_000, 10_000_000]))
            assert list(a.fetch(c, lo, hi)) == list(b.fetch(c, lo, hi)), (c, lo, hi)

    # no segments: an empty BED with an index htslib reads
    empty = tmp_path / "empty.bed.gz"
    textout.write_bed_gz(str(tmp_path / "none.seg"), str(empty), names, "exon")
    assert read_text(empty) == ""
    with pysam.TabixFile(str(empty)) as t:
        assert list(t.contigs) == [] and list(t.fetch()) == []

    # a segment past what a .tbi holds: htslib's .csi instead
    big = tmp_path / "big.seg"
    textout.append_segments(str(big), _segments([(0, 10, 20, 255, 1, 255), (0, textout.TBI_MAX, textout.TBI_MAX + 5, 0, 5, 0)]))
    out = tmp_path / "big.bed.gz"
    textout.write_bed_gz(str(big), str(out), ["chrL"], "exon")
    assert os.path.exists(str(out) + ".csi") and not os.path.exists(str(out) + ".tbi")
    with pysam.TabixFile(str(out), index=str(out) + ".csi") as t:
        assert [ln.split("\t")[1] for ln in t.fetch("chrL", textout.TBI_MAX, textout.TBI_MAX + 1)] == [str(textout.TBI_MAX)]


def test_report_call_statistics_match_a_plain_count_across_many_contigs():
    """CallStats keeps per-contig figures in arrays over one shared contig table (10^5
    scaffolds x 14 features must not mean 10^6 dict entries): the last ends and the
    busiest windows equal a plain per-call count, ties broken in genome order."""
    import pyarrow as pa

    from genoseg import report

    rng = np.random.default_rng(5)
    names = [f"s{i}" for i in range(300)]
    contigs = report.ContigIds()
    stats, calls = {}, []
    for f in range(3):
        st = stats[f"f{f}"] = report.CallStats(1000, contigs)
        for _ in range(4):  # batches mixing contigs, in any order
            n = 400
            c = rng.choice(names[: 100 * (f + 1)], n)
            s = rng.integers(0, 5000, n)
            e = s + rng.integers(1, 300, n)
            st.add(pa.record_batch([pa.array(c), pa.array(s), pa.array(e), pa.array(rng.integers(0, 1000, n))],
                                   names=["chrom", "start", "end", "score"]))
            calls += list(zip(c.tolist(), s.tolist(), e.tolist()))
    ends: dict = {}
    windows: dict = {}
    for c, s, e in calls:
        ends[c] = max(ends.get(c, 0), e)
        windows[(c, s // 1000)] = windows.get((c, s // 1000), 0) + 1
    merged: dict = {}
    for st in stats.values():
        for c, e in st.ends.items():
            merged[c] = max(merged.get(c, 0), e)
    assert merged == ends
    sizes = {c: ends.get(c, 0) + 10 for c in names[::-1]}  # genome order: reversed names
    rank = {c: i for i, c in enumerate(sizes)}
    best = sorted(windows.items(), key=lambda kv: (-kv[1], rank[kv[0][0]], kv[0][1]))[:5]
    want = [(c, b * 1000, min((b + 1) * 1000, sizes[c])) for (c, b), _ in best]
    assert report.default_regions(stats, sizes, n=5, width=1000) == want
    assert report.default_regions({}, sizes) == []
