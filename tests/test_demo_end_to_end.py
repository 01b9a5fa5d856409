"""The demo as a user runs it: simulate a held-out genome, annotate it, score the calls."""

import json

import pandas as pd
import pysam
import pyBigWig

from genoseg.cli import main

HELD_OUT_SEED = 7  # the demo model was trained on seeds 1001-1012 (assets/demo_model/training.json)


def test_annotate_recovers_planted_elements(tmp_path):
    genome = tmp_path / "genome"
    out = tmp_path / "results"
    assert main(["simulate", "--seed", str(HELD_OUT_SEED), "--out", str(genome)]) == 0
    assert main(["annotate", "--fasta", str(genome / "genome.fa"), "--truth", str(genome / "truth.gff3"),
                 "--truth-genes", str(genome / "truth_genes.gff3"), "--outdir", str(out)]) == 0
    run = out / "segment_nt"

    ev = pd.read_csv(run / "evaluation.tsv", sep="\t")
    per_feature = ev[ev["feature"] != "mean"].set_index("feature")
    assert len(per_feature) >= 8
    assert per_feature["f1"].mean() >= 0.75, per_feature[["precision", "recall", "f1"]]

    html = (run / "report.html").read_text()
    assert "F1" in html and "splice_donor" in html
    plan = json.loads((run / "plan.json").read_text())
    # the contig shorter than one window is reported, not fatal
    assert "chrUn_short1" in json.dumps(plan["skipped"])

    with pysam.TabixFile(str(run / "calls" / "exon.bed.gz")) as tbx:
        rows = [r.split("\t") for r in tbx.fetch("chr1")]
    assert rows and all(r[3] == "exon" and int(r[1]) < int(r[2]) for r in rows)
    bw = pyBigWig.open(str(run / "tracks" / "exon.bw"))
    assert bw.chroms("chr1") > 0
    bw.close()
    timings = json.loads((run / "timings.json").read_text())
    assert {s["step"] for s in timings["steps"]} >= {"plan", "predict", "collect", "call", "tracks", "evaluate", "report"}
    check_gene_models(run, genome, html, timings)

    # a second run refuses to overwrite, and leaves the first run's files alone
    before = (run / "report.html").stat().st_mtime_ns
    assert main(["annotate", "--fasta", str(genome / "genome.fa"), "--outdir", str(out)]) == 2
    assert (run / "report.html").stat().st_mtime_ns == before


def check_gene_models(run, genome, html, timings):
    """annotate decodes gene models by default: valid SO GFF3, every CDS an open reading
    frame from M, every intron canonical on its strand, scored against the truth genes."""
    from test_genes import check_structure, gt_validate, parse_gff3_models

    gt_validate(run / "genes" / "genes.gff3")
    tx, _ = parse_gff3_models(run / "genes" / "genes.gff3")
    seqs = {r.name: r.sequence for r in pysam.FastxFile(str(genome / "genome.fa"))}
    assert {t["strand"] for t in tx.values()} == {"+", "-"} and len(tx) > 50
    for t in tx.values():
        check_structure(t, seqs[t["chrom"]])
    g = pd.read_csv(run / "evaluation_genes.tsv", sep="\t").set_index(["level", "strand"])
    # measured with the demo model (held-out seed 7): exon F1 0.85, intron chain F1 0.67,
    # gene sensitivity + 0.79 / - 0.60 (README, Gene models)
    assert g.loc[("exon", "both"), "f1"] >= 0.8 and g.loc[("intron chain", "both"), "f1"] >= 0.6, g
    assert min(g.loc[("gene", s), "sensitivity"] for s in "+-") >= 0.5, g
    assert "Gene models" in html and "genes" in {s["step"] for s in timings["steps"]}


def _outputs(run):
    """Decoded predictions and the text of every calls file of one annotate run."""
    import gzip

    import pyarrow.dataset as ds

    table = ds.dataset(str(run / "predictions")).to_table()
    table = table.sort_by([("chrom", "ascending"), ("pos", "ascending")])
    calls = {p.name: gzip.open(p, "rt").read() for p in sorted((run / "calls").glob("*.bed.gz"))}
    calls["calls.gff3"] = (run / "calls" / "calls.gff3").read_text()
    return table, calls


def test_calls_do_not_depend_on_chunking_and_runs_are_deterministic(tmp_path):
    genome = tmp_path / "genome"
    assert main(["simulate", "--seed", "11", "--length-scale", "0.25", "--out", str(genome)]) == 0
    runs = {}
    for name, per_chunk in [("a", "7"), ("b", "200"), ("c", "7")]:
        out = tmp_path / name
        assert main(["annotate", "--fasta", str(genome / "genome.fa"), "--outdir", str(out),
                     "--windows-per-chunk", per_chunk]) == 0
        runs[name] = _outputs(out / "segment_nt")
    (ta, ca), (tb, cb), (tc, cc) = runs["a"], runs["b"], runs["c"]
    assert ta.num_rows > 50_000 and len(ca) >= 10
    assert ta.equals(tb) and ca == cb  # chunking invariance, bit for bit
    assert ta.equals(tc) and ca == cc  # determinism
    plan_a = json.loads((tmp_path / "a/segment_nt/plan.json").read_text())
    plan_b = json.loads((tmp_path / "b/segment_nt/plan.json").read_text())
    assert plan_a["n_chunks"] > plan_b["n_chunks"]
