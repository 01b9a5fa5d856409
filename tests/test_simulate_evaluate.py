"""Simulated genomes, the evaluation metrics and the bundled demo model."""

from __future__ import annotations

import filecmp
import gzip
import json
import pathlib

import numpy as np
import pandas as pd
import pytest

from genoseg import evaluate as ev
from genoseg.cli import main
from genoseg.simulate import FEATURES, TRAINING_SEEDS, simulate_genome

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEMO = ROOT / "assets" / "demo_model"
HELD_OUT_SEED = 7


@pytest.fixture(scope="module")
def genome():
    return simulate_genome(HELD_OUT_SEED)


def _revcomp(s: str) -> str:
    return s.translate(str.maketrans("ACGTacgt", "TGCAtgca"))[::-1]


# ----------------------------------------------------------------------------- simulate
def test_same_seed_identical_files_different_seed_differs(tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        assert main(["-q", "simulate", "--seed", str(seed), "--out", str(tmp_path / name),
                     "--length-scale", "0.2"]) == 0
    for f in ("genome.fa", "genome.fa.fai", "truth.gff3"):
        assert filecmp.cmp(tmp_path / "a" / f, tmp_path / "b" / f, shallow=False)
    assert not filecmp.cmp(tmp_path / "a" / "genome.fa", tmp_path / "c" / "genome.fa", shallow=False)
    # existing outputs are not replaced without --overwrite
    assert main(["-q", "simulate", "--seed", "3", "--out", str(tmp_path / "a")]) == 2


def test_fasta_index_and_gff3_readable(tmp_path):
    import pysam

    assert main(["-q", "simulate", "--seed", "5", "--out", str(tmp_path), "--length-scale", "0.1"]) == 0
    g = simulate_genome(5, length_scale=0.1)
    fa = pysam.FastaFile(str(tmp_path / "genome.fa"))
    assert list(fa.references) == list(g.contigs)
    for name, seq in g.contigs.items():
        assert fa.fetch(name) == seq
    truth = ev.read_gff3(str(tmp_path / "truth.gff3"))
    pd.testing.assert_frame_equal(truth, g.features[["chrom", "start", "end", "feature"]].astype(
        {"start": np.int64, "end": np.int64}))


def test_truth_consistent_with_sequence(genome):
    seqs = {k: v.upper() for k, v in genome.contigs.items()}
    df = genome.features
    assert set(df["feature"]) == set(FEATURES)
    got = lambda r: seqs[r.chrom][r.start:r.end]  # noqa: E731
    for r in df.itertuples():
        s = got(r) if r.strand == "+" else _revcomp(got(r))  # sense strand
        assert set(s) <= set("ACGT"), (r, s)  # no N / IUPAC inside planted elements
        if r.feature == "splice_donor":
            assert len(s) == 8 and s.startswith("GT") and s[3:6] == "AGT"
            if r.strand == "+":
                assert got(r).startswith("GT")
        elif r.feature == "splice_acceptor":
            assert len(s) == 8 and s.endswith("CAG") and set(s[:5]) <= set("CT")
            if r.strand == "+":
                assert got(r).endswith("AG")
        elif r.feature == "polyA_signal":
            assert s == "AATAAA"
        elif r.feature == "intron":
            assert s.startswith("GT") and s.endswith("AG")
        elif r.feature == "CTCF-bound":
            assert r.end - r.start >= 150
    # polyA signals are exactly the planted ones (no accidental AATAAA / TTTATT)
    n_motifs = sum(s.count("AATAAA") + s.count("TTTATT") for s in seqs.values())
    assert n_motifs == (df["feature"] == "polyA_signal").sum()
    # each gene: introns and exons tile the transcript, UTRs inside exons
    genes = df[df["feature"] == "protein_coding_gene"]
    for gene in genes.head(20).itertuples():
        parts = df[(df["parent"] == gene.id) & df["feature"].isin(["exon", "intron"])].sort_values("start")
        assert parts["start"].iloc[0] == gene.start and parts["end"].iloc[-1] == gene.end
        assert (parts["start"].to_numpy()[1:] == parts["end"].to_numpy()[:-1]).all()
        assert list(parts["feature"])[::2] == ["exon"] * ((len(parts) + 1) // 2)


def test_assembly_features_present(genome):
    seq = "".join(genome.contigs.values())
    assert "N" * 100 in seq
    assert any(c in seq for c in "RYKMSWrykmsw")
    assert sum(c.islower() for c in seq) > 0.05 * len(seq)
    lengths = {k: len(v) for k, v in genome.contigs.items()}
    assert min(lengths.values()) < 1536 <= sorted(lengths.values())[1]
    assert 300_000 < sum(lengths.values()) < 800_000


# ----------------------------------------------------------------------------- evaluate
def _write_bed(path, rows):
    with gzip.open(path, "wt") as fh:
        for chrom, s, e, name in rows:
            fh.write(f"{chrom}\t{s}\t{e}\t{name}\t0\t.\n")


def test_evaluate_known_overlaps(tmp_path):
    gff = tmp_path / "truth.gff3"
    gff.write_text(
        "##gff-version 3\n"
        "c1\tt\texon\t1\t100\t.\t+\t.\tID=a\n"     # [0, 100)
        "c1\tt\texon\t51\t150\t.\t+\t.\tID=b\n"    # [50, 150) -> union [0, 150): 150 bases
        "c2\tt\texon\t11\t20\t.\t-\t.\tID=c\n"     # [10, 20): 10 bases
        "c1\tt\tintron\t201\t300\t.\t+\t.\tID=d\n"  # [200, 300): 100 bases, not called
        "c1\tt\tCTCF-bound\t1\t10\t.\t+\t.\tID=e\n"  # [0, 10)
    )
    calls = tmp_path / "calls"
    calls.mkdir()
    # exon calls: [100, 200) on c1 (50 shared) + [15, 25) on c2 (5 shared)
    _write_bed(calls / "exon.bed.gz", [("c1", 100, 200, "exon"), ("c2", 15, 25, "exon")])
    _write_bed(calls / "CTCF-bound.bed.gz", [])  # called, nothing found
    _write_bed(calls / "lncRNA.bed.gz", [("c1", 0, 5, "lncRNA")])  # not in the truth
    df = ev.evaluate_calls(str(gff), str(calls)).set_index("feature")
    ex = df.loc["exon"]
    assert (ex.truth_bases, ex.called_bases, ex.tp_bases) == (160, 110, 55)
    assert ex.precision == pytest.approx(55 / 110)
    assert ex.recall == pytest.approx(55 / 160)
    assert ex.f1 == pytest.approx(2 * 55 / 270)
    assert df.loc["CTCF-bound"].f1 == 0 and np.isnan(df.loc["CTCF-bound"].precision)
    assert not df.loc["intron"].called and np.isnan(df.loc["lncRNA"].recall)
    # mean over planted features that are called: exon and CTCF-bound
    assert df.attrs["mean_f1"] == pytest.approx((2 * 55 / 270 + 0) / 2)

    # --fai clips to the contig lengths and drops unknown contigs; --out writes TSV
    (tmp_path / "g.fa.fai").write_text("c1\t120\t0\t60\t61\n")
    out = tmp_path / "eval.tsv"
    assert main(["-q", "evaluate", "--truth", str(gff), "--calls", str(calls), "--fai",
                 str(tmp_path / "g.fa.fai"), "--out", str(out), "--features", "exon"]) == 0
    tsv = pd.read_csv(out, sep="\t").set_index("feature")
    # truth [0, 120) on c1, calls [100, 120): tp 20
    assert tsv.loc["exon", "tp_bases"] == 20 and tsv.loc["exon", "truth_bases"] == 120
    assert tsv.loc["mean", "f1"] == pytest.approx(2 * 20 / 140)


def test_overlap_bases_matches_masks():
    rng = np.random.default_rng(0)
    n = 5000

    def rand_iv(k):
        s = rng.integers(0, n - 100, k)
        return pd.DataFrame({"chrom": "c", "start": s, "end": s + rng.integers(1, 100, k), "feature": "x"})

    t, c = rand_iv(60), rand_iv(80)
    mt, mc = np.zeros(n, bool), np.zeros(n, bool)
    for r in t.itertuples():
        mt[r.start:r.end] = True
    for r in c.itertuples():
        mc[r.start:r.end] = True
    assert ev.overlap_bases(t, c) == (mt.sum(), mc.sum(), (mt & mc).sum())
    s, e = ev.intervals_from_mask(mt)
    assert int((e - s).sum()) == mt.sum()


def test_missing_inputs_are_user_errors(tmp_path):
    assert main(["-q", "evaluate", "--truth", str(tmp_path / "none.gff3"), "--calls", str(tmp_path)]) == 2


# --------------------------------------------------------------------------- demo model
def test_demo_model_layout():
    hp = json.loads((DEMO / "jax_model" / "hyperparams.json").read_text())
    golden = json.loads((ROOT / "tests/data/golden/segment_nt_tiny/jax_model/hyperparams.json").read_text())
    assert set(golden) <= set(hp) and hp["features"] == list(FEATURES)
    assert json.loads((DEMO / "config.json").read_text())["backbone"] == "segment_nt"
    size = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert size < 5 * 2**20
    assert HELD_OUT_SEED not in TRAINING_SEEDS


def test_demo_model_recovers_planted_elements(genome):
    """Held-out seed, a few hundred windows: per-feature base-level F1 well above chance."""
    from genoseg.models import load_model

    model = load_model(DEMO)
    assert model.backbone == "segment_nt" and model.window_length % 24 == 0
    sub = {"chr3": genome.contigs["chr3"][:60_000]}
    preds = ev.predict_contigs(model, sub)
    calls = ev.threshold_calls(preds, model.features, 0.5)
    truth = genome.features[genome.features["chrom"] == "chr3"][["chrom", "start", "end", "feature"]]
    truth = ev.restrict(truth, preds)
    df = ev.evaluate_intervals(truth, calls, features=model.features,
                               called_features=model.features).set_index("feature")
    for f in model.features:
        assert df.loc[f, "f1"] >= MIN_F1[f], (f, df.loc[f, "f1"], df)
    assert df.attrs["mean_f1"] >= MIN_MEAN_F1


# Measured on this region of the held-out seed (F1 at threshold 0.5): gene 0.99, exon 0.94,
# intron 0.98, donor 0.67, acceptor 0.56, 5UTR 0.87, 3UTR 0.88, CTCF 0.86, polyA 0.34,
# enhancer 0.91, promoter 0.97; mean 0.82. Chance (random calls) is about the feature's
# share of bases: under 0.5 for the gene, under 0.01 for splice sites and polyA signals.
MIN_F1 = {
    "protein_coding_gene": 0.85, "exon": 0.8, "intron": 0.85, "splice_donor": 0.45,
    "splice_acceptor": 0.4, "5UTR": 0.65, "3UTR": 0.7, "CTCF-bound": 0.65, "polyA_signal": 0.15,
    "enhancer_Tissue_invariant": 0.7, "promoter_Tissue_invariant": 0.85,
}
MIN_MEAN_F1 = 0.7
