"""Gene models: exact decoding, the sequence rules on every output, both strands, the
output files (checked with genometools / tabix), the CLI, and gene-level scoring."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from genoseg import evaluate as ev
from genoseg.cli import main
from genoseg.genes import Decoder, DecoderParams, statemodel as sm, viterbi as vt
from genoseg.simulate import FEATURES, simulate_genome, write_simulation

from test_calls_tracks_report import write_dataset

STOPS = {"TAA", "TAG", "TGA"}
COMP = str.maketrans("ACGTacgt", "TGCAtgca")
CODE = {(a + b + c): aa for (a, b, c), aa in zip(
    [(x, y, z) for x in "TCAG" for y in "TCAG" for z in "TCAG"],
    "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG")}


def revcomp(s: str) -> str:
    return s.translate(COMP)[::-1]


def gt_validate(path) -> None:
    """``gt gff3validator -typecheck so`` must accept ``path`` (genometools from the
    system packages; `make test` installs it)."""
    gt = shutil.which("gt")
    if gt is None:
        pytest.skip("genometools (gt) is not installed and could not be installed here (make test installs it with "
                    "apt-get as root or with passwordless sudo): GFF3 validation skipped")
    r = subprocess.run([gt, "gff3validator", "-typecheck", "so", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr + r.stdout


# ------------------------------------------------------------------ gene structures
def parse_gff3_models(path):
    """{transcript: dict(chrom, strand, type, exons, cds [(start0, end, phase)], gene)} from a GFF3."""
    tx, genes = {}, {}
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        c, _, t, a, b, score, strand, phase, attrs = line.rstrip("\n").split("\t")
        kv = dict(x.split("=", 1) for x in attrs.split(";"))
        if t == "gene":
            genes[kv["ID"]] = (c, int(a) - 1, int(b), strand)
        elif t in ("mRNA", "lnc_RNA"):
            tx[kv["ID"]] = {"chrom": c, "strand": strand, "type": t, "gene": kv["Parent"], "exons": [], "cds": [],
                            "utr": [], "span": (int(a) - 1, int(b)), "score": None if score == "." else float(score)}
        elif t == "exon":
            tx[kv["Parent"]]["exons"].append((int(a) - 1, int(b)))
        elif t == "CDS":
            tx[kv["Parent"]]["cds"].append((int(a) - 1, int(b), int(phase)))
        elif t in ("five_prime_UTR", "three_prime_UTR"):
            tx[kv["Parent"]]["utr"].append((int(a) - 1, int(b), t))
    return tx, genes


def check_structure(t: dict, seq: str) -> str:
    """Assert one transcript obeys every sequence rule; returns its protein ('' if
    non-coding). ``seq``: its contig, either case."""
    seq = seq.upper()
    ex = sorted(t["exons"])
    assert ex and all(a < b for a, b in ex) and all(ex[i][1] < ex[i + 1][0] for i in range(len(ex) - 1)), ex
    assert (ex[0][0], ex[-1][1]) == t["span"]
    sense = (lambda s: s) if t["strand"] == "+" else revcomp
    for (_, a), (b, _) in zip(ex[:-1], ex[1:]):  # every intron: GT/GC ... AG on its own strand
        intron = sense(seq[a:b])
        assert intron[:2] in ("GT", "GC") and intron[-2:] == "AG", (t["strand"], a, b, intron[:4], intron[-4:])
        if t["strand"] == "-":
            assert seq[b - 2:b] in ("AC", "GC") and seq[a:a + 2] == "CT"
    if not t["cds"]:
        assert t["type"] == "lnc_RNA"
        return ""
    assert t["type"] == "mRNA"
    cds = sorted(t["cds"])
    for a, b, _ in cds:  # CDS inside exons
        assert any(x <= a and b <= y for x, y in ex), (a, b, ex)
    order = cds if t["strand"] == "+" else cds[::-1]
    done = 0
    for a, b, phase in order:  # phase = bases before the next codon start
        assert phase == (3 - done % 3) % 3, (order, phase, done)
        done += b - a
    cds_seq = sense("".join(seq[a:b] for a, b, _ in cds))
    assert len(cds_seq) % 3 == 0 and cds_seq.startswith("ATG") and cds_seq[-3:] in STOPS, cds_seq
    codons = [cds_seq[i:i + 3] for i in range(0, len(cds_seq), 3)]
    assert not STOPS & set(codons[:-1]), "in-frame stop codon"
    # UTRs are the exonic bases outside the CDS, 5' of it and 3' of it
    utr_bases = sum(b - a for a, b, _ in t["utr"])
    assert utr_bases == sum(b - a for a, b in ex) - len(cds_seq)
    lo, hi = cds[0][0], cds[-1][1]
    for a, b, kind in t["utr"]:
        five = (b <= lo) if t["strand"] == "+" else (a >= hi)
        assert (kind == "five_prime_UTR") == five, (kind, a, b, lo, hi, t["strand"])
    return "".join(CODE.get(c, "X") for c in codons[:-1])


# ------------------------------------------------------------------ exact decoding
def dense_viterbi(emis, cls, flags, jsc, edges):
    """Textbook Viterbi with a full transition matrix per junction (reference)."""
    src, dst, strand, need, kind, const = edges
    n, S = emis.shape[0], len(cls)
    V = np.full(S, -np.inf)
    V[0] = emis[0, cls[0]]
    back = np.zeros((n, S), np.int64)
    for i in range(1, n):
        T = np.full((S, S), -np.inf)
        for e in range(len(src)):
            if flags[strand[e], i] & need[e] != need[e]:
                continue
            v = const[e] + (jsc[strand[e], kind[e], i] if kind[e] >= 0 else 0.0)
            T[src[e], dst[e]] = max(T[src[e], dst[e]], v)
        M = V[:, None] + T
        back[i] = M.argmax(axis=0)
        V = M.max(axis=0) + emis[i, cls]
    path = [0]
    for i in range(n - 1, 0, -1):
        path.append(back[i, path[-1]])
    return np.array(path[::-1]), V[0]


def random_problem(rng, n):
    motifs = ["ATG", "TAA", "TGA", "GTAAGT", "CAG", "TTTCAG", "GCAGG", "ATGGC"]
    parts = []
    while sum(map(len, parts)) < n:
        parts.append(motifs[rng.integers(len(motifs))] if rng.random() < 0.3 else "ACGT"[rng.integers(4)])
    seq = vt.encode(np.frombuffer("".join(parts)[:n].encode(), np.uint8))
    flags = vt.junction_flags(seq)
    emis = rng.normal(0, 2, size=(n, len(sm.CLASSES))).astype(np.float32)
    emis[:, sm.E_IG] = 0
    jsc = rng.normal(0, 1, size=(2, 2, n + 1)).astype(np.float32)
    return seq, emis, np.ascontiguousarray(flags), jsc


def test_kernel_is_exact_viterbi():
    """The compiled kernel returns the maximum-score path of the state graph (checked
    against a dense reference), and the same path as the plain-Python kernel."""
    rng = np.random.default_rng(1)
    edges = sm.edges(DecoderParams().constants())
    cls = sm.state_classes()
    n_genic = 0
    for trial in range(6):
        seq, emis, flags, jsc = random_problem(rng, 160)
        path, score = vt.decode(emis, flags, jsc, edges, cls)
        ref_path, ref_score = dense_viterbi(emis, cls, flags, jsc, edges)
        assert np.isclose(score, ref_score, rtol=1e-9, atol=1e-6), (trial, score, ref_score)
        np.testing.assert_array_equal(path, ref_path)
        py_path, py_score = vt.decode(emis, flags, jsc, edges, cls, compiled=False)
        np.testing.assert_array_equal(path, py_path)
        n_genic += int((path != sm.IG).sum())
    assert n_genic > 100  # the random problems do produce gene structures


def smooth_random_codes(rng, n, features):
    """Random probabilities varying over tens of bases (a worst case for the rules)."""
    out = np.zeros((n, len(features)), np.uint8)
    for j in range(len(features)):
        walk = np.cumsum(rng.normal(0, 0.6, n))
        walk -= np.convolve(walk, np.ones(301) / 301, mode="same")
        out[:, j] = np.rint(255 / (1 + np.exp(-walk))).astype(np.uint8)
    return out


def test_every_decoded_structure_obeys_the_rules_on_random_input():
    """Random sequence and probabilities: whatever the decoder outputs on either strand
    is an open reading frame from ATG to a stop with canonical splice sites."""
    rng = np.random.default_rng(7)
    n = 60_000
    gc_rich = rng.choice(np.frombuffer(b"ACGT", np.uint8), size=n, p=[0.2, 0.3, 0.3, 0.2])
    seq_text = gc_rich.tobytes().decode()
    feats = ["protein_coding_gene", "lncRNA", "exon", "intron", "splice_donor", "splice_acceptor", "5UTR", "3UTR"]
    codes = smooth_random_codes(rng, n, feats)
    dec = Decoder(feats, DecoderParams(min_cds_length=6, min_lncrna_length=1, splice_prior_weight=0.0))
    txs = dec.decode("c", 0, vt.encode(gc_rich), codes)
    kinds = {(t.strand, t.coding) for t in txs}
    assert kinds == {("+", True), ("-", True), ("+", False), ("-", False)}, kinds
    assert sum(len(t.exons) > 1 for t in txs) > 10
    for t in txs:
        rec = {"chrom": "c", "strand": t.strand, "type": "mRNA" if t.coding else "lnc_RNA",
               "exons": [tuple(x) for x in t.exons.tolist()], "span": (t.start, t.end),
               "cds": [(a, b, p) for (a, b), p in zip(t.cds.tolist(), t.cds_phase)],
               "utr": [(a, b, "five_prime_UTR") for a, b in t.utr5.tolist()]
               + [(a, b, "three_prime_UTR") for a, b in t.utr3.tolist()]}
        protein = check_structure(rec, seq_text)
        assert protein == t.protein and (not t.coding or (protein.startswith("M") and "*" not in protein))


# ------------------------------------------------------ simulated genome, clean signal
def synthetic_codes(genome, chrom, rng, blur=3, noise=0.12):
    """Probabilities a good model would give: the truth labels, blurred over a few
    bases, plus noise (features of the simulator, in its order)."""
    truth = genome.masks(chrom).astype(np.float64)
    kernel = np.ones(2 * blur + 1) / (2 * blur + 1)
    p = np.stack([np.convolve(truth[:, j], kernel, mode="same") for j in range(truth.shape[1])], axis=1)
    p = np.clip(0.05 + 0.9 * p + rng.uniform(-noise, noise, p.shape), 0, 1)
    return np.rint(p * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    """A simulated genome, a prediction dataset of synthetic probabilities, and genoseg genes on it."""
    tmp = tmp_path_factory.mktemp("clean")
    genome = simulate_genome(21, length_scale=0.6)
    paths = write_simulation(genome, str(tmp / "sim"))
    rng = np.random.default_rng(3)
    contigs = {}
    for chrom, seq in genome.contigs.items():
        ok = np.flatnonzero(np.frombuffer(seq.upper().encode(), np.uint8) != ord("N"))
        contigs[chrom] = (ok, synthetic_codes(genome, chrom, rng)[ok])
    ddir = write_dataset(tmp / "out", contigs, features=list(FEATURES))
    assert main(["-q", "genes", "--predictions", ddir, "--fasta", paths["fasta"], "--outdir", str(tmp / "genes"),
                 "--threads", "1"]) == 0
    return genome, paths, ddir, tmp


def test_clean_signal_recovers_genes_on_both_strands(clean_run):
    genome, paths, ddir, tmp = clean_run
    table = ev.evaluate_gene_models(paths["truth_genes"], str(tmp / "genes" / "genes.gff3"))
    t = table.set_index(["level", "strand"])
    for strand in ("+", "-"):
        assert t.loc[("gene", strand), "reference"] >= 10
        for level, least in (("exon", 0.95), ("intron", 0.95), ("intron chain", 0.9), ("gene", 0.9)):
            assert t.loc[(level, strand), "f1"] >= least, (level, strand, ev.format_gene_table(table))


def test_gene_outputs_are_valid_and_consistent(clean_run):
    genome, paths, ddir, tmp = clean_run
    out = tmp / "genes"
    assert sorted(os.listdir(out)) == ["genes.gff3", "proteins.faa", "summary.json", "transcripts.bed"]
    gt_validate(out / "genes.gff3")
    tx, genes = parse_gff3_models(out / "genes.gff3")
    assert len(tx) == len(genes) > 20
    proteins = {}
    for rec in open(out / "proteins.faa").read().split(">")[1:]:
        head, *lines = rec.splitlines()
        proteins[head.split()[0]] = "".join(lines)
    for tid, t in tx.items():  # every transcript, both strands: the sequence rules
        p = check_structure(t, genome.contigs[t["chrom"]])
        assert proteins.get(tid, "") == p and (not p or (p[0] == "M" and "*" not in p))
    assert set(proteins) == {k for k, t in tx.items() if t["cds"]}
    # BED12 blocks = GFF3 exons, thick part = CDS; tabix can index it once sorted and bgzipped
    import pysam

    bed = [ln.split("\t") for ln in open(out / "transcripts.bed").read().splitlines()]
    assert len(bed) == len(tx)
    for r in bed:
        t = tx[r[3]]
        s = int(r[1])
        sizes, starts = [int(x) for x in r[10].rstrip(",").split(",")], [int(x) for x in r[11].rstrip(",").split(",")]
        assert int(r[9]) == len(sizes) and [(s + a, s + a + b) for a, b in zip(starts, sizes)] == sorted(t["exons"])
        assert (int(r[6]), int(r[7])) == ((min(c[0] for c in t["cds"]), max(c[1] for c in t["cds"]))
                                          if t["cds"] else (s, s))
        assert r[5] == t["strand"] and 0 <= int(r[4]) <= 1000
    gz = str(tmp / "transcripts.bed.gz")
    pysam.tabix_compress(str(out / "transcripts.bed"), gz, force=True)
    pysam.tabix_index(gz, preset="bed", force=True)
    with pysam.TabixFile(gz) as tbx:
        assert len(list(tbx.fetch("chr1"))) == sum(r[0] == "chr1" for r in bed)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["genes"] == len(genes) and summary["coding"] == len(proteins)
    assert 0 < summary["region_bases"] <= summary["bases"]


def test_threads_and_batches_do_not_change_the_output(clean_run, tmp_path):
    genome, paths, ddir, tmp = clean_run
    from genoseg.genes import predict_genes

    predict_genes(ddir, paths["fasta"], str(tmp_path / "t2"), threads=2, batch_rows=7_001)
    for f in ("genes.gff3", "proteins.faa", "transcripts.bed"):
        assert (tmp_path / "t2" / f).read_bytes() == (tmp / "genes" / f).read_bytes(), f


def test_strands_are_decoded_as_mirror_images(clean_run):
    """Decoding the reverse complement (sequence reversed and complemented, probabilities
    reversed) gives exactly the mirrored gene models: neither strand is favoured."""
    genome, paths, ddir, tmp = clean_run
    chrom = "chr2"
    seq = genome.contigs[chrom]
    codes = synthetic_codes(genome, chrom, np.random.default_rng(5))
    a, b = 20_000, 60_000
    dec = Decoder(list(FEATURES))
    fwd = dec.decode(chrom, 0, vt.encode(np.frombuffer(seq[a:b].encode(), np.uint8)), codes[a:b])
    rc_seq = revcomp(seq[a:b])
    rev = dec.decode(chrom, 0, vt.encode(np.frombuffer(rc_seq.encode(), np.uint8)), codes[a:b][::-1].copy())
    n = b - a
    mirror = sorted(("+-"[t.strand == "+"], tuple(sorted((n - e, n - s) for s, e in t.exons.tolist())), t.protein)
                    for t in fwd)
    assert {t.strand for t in fwd} == {"+", "-"} and len(fwd) >= 4
    assert mirror == sorted((t.strand, tuple(map(tuple, t.exons.tolist())), t.protein) for t in rev)


# ----------------------------------------------------------------------- the CLI
def test_genes_cli_errors_before_work(clean_run, tmp_path, capsys):
    genome, paths, ddir, tmp = clean_run
    out = tmp_path / "g"
    base = ["genes", "--predictions", ddir, "--fasta", paths["fasta"], "--outdir", str(out)]
    cases = [
        (["genes", "--predictions", str(tmp_path / "none"), "--fasta", paths["fasta"], "--outdir", str(out)],
         "does not exist"),
        (base + ["--contigs", "chrX"], "chrX"),
        (base + ["--threads", "0"], "--threads"),
        (base + ["--contig-regex", "^nope$"], "matches none"),
        (["genes", "--predictions", ddir, "--fasta", str(tmp / "sim" / "missing.fa"), "--outdir", str(out)],
         "not found"),
    ]
    for argv, text in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert text in err and err.count("\n") == 1, err
        assert not out.exists() and not [p for p in os.listdir(tmp_path) if "partial" in p]
    # a FASTA without the predicted contigs
    other = tmp_path / "other.fa"
    other.write_text(">chrZ\nACGT\n")
    assert main(base[:4] + [str(other)] + base[5:]) == 2
    assert "chr1" in capsys.readouterr().err
    # a model without exon/intron probabilities cannot make gene models
    nd = write_dataset(tmp_path / "ctcf", {"chr1": (np.arange(100), np.zeros((100, 1), np.uint8))},
                       features=["CTCF-bound"])
    assert main(["genes", "--predictions", nd, "--fasta", paths["fasta"], "--outdir", str(out)]) == 2
    assert "exon and/or intron" in capsys.readouterr().err
    # existing output is kept without --overwrite, replaced with it
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert main(base) == 2 and (out / "mine.txt").exists()
    assert "--overwrite" in capsys.readouterr().err
    assert main(base + ["--overwrite", "--contigs", "chr2"]) == 0
    assert not (out / "mine.txt").exists()
    tx, _ = parse_gff3_models(out / "genes.gff3")
    assert tx and {t["chrom"] for t in tx.values()} == {"chr2"}


# --------------------------------------------------------------- regions, streaming
def test_regions_do_not_depend_on_batches_and_respect_margins():
    from genoseg.genes.regions import RegionFinder

    rng = np.random.default_rng(0)
    n = 30_000
    pos = np.delete(np.arange(n), np.arange(12_000, 12_050))  # a stretch without predictions
    g = np.zeros(n, np.uint8)
    for c in rng.integers(0, n, 12):
        g[c:c + rng.integers(50, 2000)] = 200
    codes = g[pos][:, None]

    def regions(batch, max_region=10**6):
        f = RegionFinder([0], 0.3, 100, max_region)
        out = []
        for i in range(0, len(pos), batch):
            out += [(s, len(c)) for s, c in f.feed(pos[i:i + batch], codes[i:i + batch])]
        return out + [(s, len(c)) for s, c in f.finish()], f

    ref, _ = regions(len(pos))
    for batch in (1_000, 4_999, 17):
        assert regions(batch)[0] == ref
    starts = {0, 12_050}
    ends = {12_000, n}
    for s, k in ref:  # margins of 100 bp around gene-like bases, never across missing rows
        assert not (s < 12_000 < s + k)
        gene = g[s:s + k] >= 77
        if s not in starts:
            assert not gene[:100].any() and gene[100]
        if s + k not in ends:
            assert not gene[-100:].any() and gene[-101]
    covered = np.zeros(n, bool)
    for s, k in ref:
        covered[s:s + k] = True
    assert covered[pos[g[pos] >= 77]].all()
    cut, f = regions(3_000, max_region=2_000)
    assert f.forced_cuts > 0 and max(k for _, k in cut) <= 2_000


# ------------------------------------------------------------- gene-level scoring
def _gff(path, rows):
    with open(path, "w") as fh:
        fh.write("##gff-version 3\n")
        for r in rows:
            fh.write("\t".join(map(str, r)) + "\n")


def test_gene_level_scores_known_cases(tmp_path):
    def gene(gid, strand, exons, chrom="c1", tx_type="mRNA"):
        lo, hi = min(a for a, _ in exons), max(b for _, b in exons)
        rows = [(chrom, "t", "gene", lo, hi, ".", strand, ".", f"ID={gid}"),
                (chrom, "t", tx_type, lo, hi, ".", strand, ".", f"ID={gid}.t;Parent={gid}")]
        rows += [(chrom, "t", "exon", a, b, ".", strand, ".", f"Parent={gid}.t") for a, b in exons]
        return rows

    ref = (gene("A", "+", [(101, 200), (301, 400), (501, 600)])      # 3 exons, 2 introns
           + gene("B", "-", [(1001, 1100), (1201, 1300)])           # 2 exons, 1 intron
           + gene("C", "+", [(2001, 2500)]))                         # single exon
    pred = (gene("a", "+", [(151, 200), (301, 400), (501, 680)])      # free ends off by 50 / 80: match
            + gene("b", "-", [(1001, 1100), (1205, 1300)])           # acceptor off by 4: chain wrong
            + gene("c", "+", [(2051, 2500)])                          # 450/500 overlap >= 80%: transcript ok
            + gene("d", "-", [(5001, 5100), (5201, 5300)]))          # novel
    _gff(tmp_path / "ref.gff3", ref)
    _gff(tmp_path / "pred.gff3", pred)
    df = ev.evaluate_gene_models(str(tmp_path / "ref.gff3"), str(tmp_path / "pred.gff3"))
    t = df.set_index(["level", "strand"])

    def sp(level, strand="both"):
        r = t.loc[(level, strand)]
        return (int(r.matched_reference), int(r.reference), int(r.matched_predicted), int(r.predicted))

    # exons (unique): ref A1 A2 A3 B1 B2 C1 = 6; pred a1 a2 a3 b1 b2 c1 d1 d2 = 8
    assert sp("exon") == (5, 6, 5, 8)                 # A1 (free start 50 bp off), A2, A3 (free end 80), B1, C1
    assert sp("exon (exact)") == (2, 6, 2, 8)          # A2, B1
    assert sp("intron") == (2, 3, 2, 4)                # A's two introns; B's differs
    assert sp("intron chain") == (1, 2, 1, 3)          # A only
    assert sp("transcript") == (2, 3, 2, 4)            # A (chain) + C (single exon overlap)
    assert sp("gene") == (2, 3, 2, 4)
    assert sp("gene", "+") == (2, 2, 2, 2) and sp("gene", "-") == (0, 1, 0, 2)
    r = t.loc[("base", "both")]
    ref_bases = 100 * 3 + 100 * 2 + 500
    pred_bases = 50 + 100 + 180 + 100 + 96 + 450 + 200
    assert (r.reference, r.predicted) == (ref_bases, pred_bases)
    assert r.matched_reference == 50 + 100 + 100 + 100 + 96 + 450
    # CLI: table printed, TSV written
    out = tmp_path / "genes.tsv"
    assert main(["-q", "evaluate", "--truth", str(tmp_path / "ref.gff3"), "--genes", str(tmp_path / "pred.gff3"),
                 "--out-genes", str(out)]) == 0
    tsv = pd.read_csv(out, sep="\t")
    assert len(tsv) == 3 * len(ev.GENE_LEVELS)
    assert main(["-q", "evaluate", "--truth", str(tmp_path / "ref.gff3")]) == 2


def test_gene_models_from_gtf_and_from_cds_only(tmp_path):
    gtf = tmp_path / "ref.gtf"
    gtf.write_text('c1\tt\texon\t101\t200\t.\t+\t.\tgene_id "G"; transcript_id "T";\n'
                   'c1\tt\texon\t301\t400\t.\t+\t.\tgene_id "G"; transcript_id "T";\n')
    m = ev.read_gene_models(str(gtf))
    assert m[["start", "end", "transcript", "gene"]].values.tolist() == [[100, 200, "T", "G"], [300, 400, "T", "G"]]
    gff = tmp_path / "cds.gff3"
    _gff(gff, [("c1", "t", "gene", 101, 400, ".", "-", ".", "ID=G"),
               ("c1", "t", "mRNA", 101, 400, ".", "-", ".", "ID=T;Parent=G"),
               ("c1", "t", "three_prime_UTR", 101, 150, ".", "-", ".", "Parent=T"),
               ("c1", "t", "CDS", 151, 200, ".", "-", "0", "Parent=T"),
               ("c1", "t", "CDS", 301, 400, ".", "-", "0", "Parent=T")])
    m = ev.read_gene_models(str(gff))
    assert m[["start", "end", "strand", "gene"]].values.tolist() == [[100, 200, "-", "G"], [300, 400, "-", "G"]]


# ------------------------------------------------------------------- the simulator
def test_simulated_truth_gene_models(tmp_path):
    genome = simulate_genome(7)
    paths = write_simulation(genome, str(tmp_path))
    gt_validate(paths["truth_genes"])
    tx, genes = parse_gff3_models(paths["truth_genes"])
    assert len(tx) == len(genes) == (genome.features["feature"] == "protein_coding_gene").sum()
    assert {t["strand"] for t in tx.values()} == {"+", "-"}
    for t in tx.values():  # every planted gene is a valid open reading frame
        p = check_structure(t, genome.contigs[t["chrom"]])
        assert p.startswith("M") and "*" not in p
    # same exons and introns as the model-feature truth
    f = genome.features
    exons = sorted((r.chrom, r.start, r.end) for r in f[f["feature"] == "exon"].itertuples())
    assert exons == sorted((t["chrom"], a, b) for t in tx.values() for a, b in t["exons"])
    m = ev.read_gene_models(paths["truth_genes"])
    assert ev.compare_gene_models(m, m).set_index(["level", "strand"]).loc[:, "f1"].min() == 1.0


# ----------------------------------------------------------------------- the report
def test_report_summary_gene_section_and_diagrams(clean_run, tmp_path):
    import re

    from genoseg.report import write_report

    genome, paths, ddir, tmp = clean_run
    bdir = os.path.dirname(ddir)
    shutil.copytree(tmp / "genes", os.path.join(bdir, "genes"), dirs_exist_ok=True)
    table = ev.evaluate_gene_models(paths["truth_genes"], os.path.join(bdir, "genes", "genes.gff3"))
    plan = {"genome": "genome.fa", "model": "assets/demo_model", "backbone": "segment_nt", "window_length": 1536,
            "window_lengths": [1536, 768, 384], "min_window_length": 384, "overlap": 0.5, "n_windows": 120,
            "n_chunks": 2, "windows_per_chunk": 64, "output_spans": {"1536": [0, 1536]}, "steps": {"1536": 768},
            "selection": {"contigs": None, "contig_regex": None, "min_contig_length": 1}, "skipped": []}
    timings = {"steps": [{"step": "predict", "seconds": 12.0}, {"step": "genes", "seconds": 1.5}],
               "command": "genoseg annotate --fasta <g>.fa --outdir out", "demo_model": True}
    tx, _ = parse_gff3_models(os.path.join(bdir, "genes", "genes.gff3"))
    first = min((t for t in tx.values() if t["chrom"] == "chr1"), key=lambda t: t["span"])
    region = f"chr1:{first['span'][0] + 1}-{first['span'][1]}"
    out = tmp_path / "r.html"
    write_report(bdir, str(out), plan=plan, timings=timings, gene_evaluation=table, regions=[region],
                 truth_genes=paths["truth_genes"])
    doc = out.read_text()
    summary = doc[doc.index("<h2>Summary"):doc.index("<h2>What ran")]
    for text in ("genome.fa", "bundled demonstration model", "device</td><td>unknown", "13.5 s", "exon F1 ",
                 "intron chain F1"):
        assert text in summary, text
    assert "Demonstration model" in doc and "genoseg annotate --fasta &lt;g&gt;.fa --outdir out" in doc
    ran = doc[doc.index("<h2>What ran"):doc.index("<h2>Skipped")]
    assert "Windows of 1,536 bp for segment_nt, overlapping by 50 %" in ran and "768, 384 bp" in ran
    assert "{" not in re.sub(r"<style>.*?</style>", "", ran) and "output_spans" not in ran  # no raw dicts
    genes_part = doc[doc.index("<h2>Gene models"):]
    assert f"{len(tx):,} genes" in genes_part and "Exons per transcript" in genes_part and "CDS length" in genes_part
    assert "intron chain" in genes_part
    svg = doc[doc.index("<h2>Probability tracks"):doc.index("<h2>Gene models")]
    assert "genes (decoded)" in svg and "genes (truth)" in svg
    from genoseg.report_genes import DECODED_COLOR, TRUTH_COLOR

    assert svg.count(f'height="12" fill="{DECODED_COLOR}"') >= len(first["cds"])  # CDS boxes of the gene
    assert f'fill="{TRUTH_COLOR}"' in svg
    width = int(re.search(r'<svg[^>]*width="(\d+)"', svg).group(1))
    ticks = re.findall(r'<text x="([\d.]+)" y="[\d.]+" text-anchor="(\w+)" class="tick">', svg)
    assert ticks and all(a == "end" for x, a in ticks if float(x) > width - 40)  # last label inside the plot
    # without the demo model: no banner
    write_report(bdir, str(out), plan={**plan, "model": "models/segment_nt"}, overwrite=True,
                 timings={**timings, "demo_model": False})
    assert "Demonstration model" not in out.read_text()
