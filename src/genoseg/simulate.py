"""Deterministic synthetic genomes with planted, annotated elements.

``simulate_genome(seed)`` lays out each contig as intergenic spacers between planted
elements, draws every base from the composition of the element it belongs to (one
vectorised draw per contig), writes the elements' signature motifs on top, and returns
the sequence together with the truth annotation. The same seed always gives the same
genome, byte for byte; the demo model (``assets/demo_model``) was trained on genomes
from seeds listed in :data:`TRAINING_SEEDS`, so evaluate it on any other seed.

Planted elements (feature names as the SegmentNT models name them):

- ``protein_coding_gene`` on either strand: ``5UTR`` + CDS (ATG ... stop) split into
  2-5 ``exon`` by ``intron`` (150-1,200 bp) with canonical splice sites:
  ``splice_donor`` = the intron's first 8 bases, ``GT[AG]AGT`` + 2;
  ``splice_acceptor`` = its last 8 bases, 5 pyrimidines + ``CAG`` (so on the + strand
  every donor starts with GT and every acceptor ends with AG), then ``3UTR`` with a
  ``polyA_signal`` ``AATAAA`` 12-30 bp before the transcript end. The gene is preceded
  by a ``promoter_Tissue_invariant`` (CpG-rich, ``TATAAA`` box 30 bp upstream of the TSS).
- ``enhancer_Tissue_invariant``: purine-skewed 300-700 bp with 4-7 TF motifs.
- ``CTCF-bound``: a 150-250 bp site around one or two CTCF consensus motifs.

Each element class has its own base composition (defined on the element's sense
strand); all ``AATAAA``/``TTTATT`` outside planted polyA signals are removed, so the
polyA feature is exactly its motif. What real assemblies also contain is added in the
intergenic spacers only: N gaps (and a leading N run), single IUPAC ambiguity codes, and
soft-masked (lower-case) stretches anywhere (case does not change the sequence). The last
contig is shorter than one demo-model window.

The coding sequence of every gene is an open reading frame: ATG, a length that is a
multiple of 3 across its exons, no in-frame stop codon before the final one (in-frame
stops drawn by chance are changed from ``T..`` to ``C..``; deterministic, no extra random
draws).

Two truth files describe the same genes: ``truth.gff3`` uses the model's feature names
(one row per planted element, for per-feature scoring), ``truth_genes.gff3`` the standard
gene model hierarchy ``gene -> mRNA -> exon / CDS (with phase) / five_prime_UTR /
three_prime_UTR`` (Sequence Ontology types, as GENCODE/Ensembl write it; for gene-level
scoring with ``genoseg evaluate --genes``).

Coordinates are 0-based half-open inside (``features`` and ``models`` tables); the GFF3
files are 1-based closed.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

if TYPE_CHECKING:  # pandas is imported where tables are built: the CLI parser imports
    import pandas as pd  # this module for DEFAULT_SEED and should start fast

from .features import PUBLISHED_FEATURES
from .outputs import atomic_path

log = logging.getLogger(__name__)

#: Features planted by the simulator, in the order the demo model predicts them: the
#: published order without the features a synthetic genome cannot tell apart
#: (lncRNA from coding genes, tissue-specific from tissue-invariant elements).
NOT_PLANTED = ("lncRNA", "enhancer_Tissue_specific", "promoter_Tissue_specific")
FEATURES = tuple(f for f in PUBLISHED_FEATURES if f not in NOT_PLANTED)

#: Seeds of the genomes the demo model was trained on (do not evaluate on these).
TRAINING_SEEDS = tuple(range(1001, 1013))
#: Default seed of ``genoseg simulate`` (held out from training).
DEFAULT_SEED = 7

#: Contig names and lengths at ``length_scale`` 1 (the last is shorter than one window).
CONTIGS = (("chr1", 200_000), ("chr2", 150_000), ("chr3", 120_000), ("chrUn_short1", 1_000))

BASES = np.frombuffer(b"ACGT", dtype=np.uint8)
_COMP = np.zeros(256, dtype=np.uint8)
for _a, _b in zip(b"ACGTNacgtnRYKMSWBDHVryksmwbdhv", b"TGCANtgcanYRMKSWVHDByrmkswvhdb"):
    _COMP[_a] = _b

# Composition classes (sense strand): probabilities of A, C, G, T.
INTERGENIC, PROMOTER, UTR5, CDS, INTRON, UTR3, ENHANCER, CTCF, GAP = range(9)
COMPOSITION = np.array([
    [0.30, 0.20, 0.20, 0.30],  # intergenic
    [0.10, 0.40, 0.40, 0.10],  # promoter (CpG island-like)
    [0.15, 0.45, 0.15, 0.25],  # 5'UTR (C-rich)
    [0.25, 0.25, 0.40, 0.10],  # CDS (G-rich, T-poor)
    [0.25, 0.12, 0.13, 0.50],  # intron (T-rich)
    [0.45, 0.12, 0.13, 0.30],  # 3'UTR (A-rich)
    [0.35, 0.15, 0.35, 0.15],  # enhancer (purine-rich)
    [0.20, 0.30, 0.30, 0.20],  # CTCF site
    [0.25, 0.25, 0.25, 0.25],  # gap (replaced by N)
])

CTCF_MOTIF = "TGGCCACCAGGGGGCGCTA"  # JASPAR MA0139.1 consensus
TF_MOTIFS = ("TGACTCA", "CACGTG", "GATAAG", "TTGCGCAA", "GGAATTCC")
POLYA = "AATAAA"
IUPAC_FOR = {"A": "RMW", "C": "YMS", "G": "RKS", "T": "YKW"}


#: Stop codons of the standard genetic code (sense strand).
STOP_CODONS = ("TAA", "TAG", "TGA")

#: Columns of :attr:`SimulatedGenome.models` (gene model hierarchy, 0-based half-open).
MODEL_COLUMNS = ["chrom", "start", "end", "type", "strand", "phase", "id", "parent"]


@dataclasses.dataclass
class SimulatedGenome:
    """A simulated genome: ``contigs`` maps name -> sequence (str, in order),
    ``features`` is the truth table in model feature names (chrom, start, end, feature,
    strand, id, parent) and ``models`` the same genes as Sequence Ontology gene models
    (:data:`MODEL_COLUMNS`: gene, mRNA, exon, CDS with phase, five_prime_UTR,
    three_prime_UTR), all 0-based half-open."""

    seed: int
    contigs: dict
    features: pd.DataFrame
    models: Optional[pd.DataFrame] = None

    def masks(self, chrom: str, features: Sequence[str] = FEATURES) -> np.ndarray:
        """Boolean ``[len(contig), len(features)]`` truth: base inside a feature."""
        n = len(self.contigs[chrom])
        out = np.zeros((n, len(features)), dtype=bool)
        df = self.features[self.features["chrom"] == chrom]
        for j, name in enumerate(features):
            sel = df[df["feature"] == name]
            delta = np.zeros(n + 1, dtype=np.int32)
            np.add.at(delta, sel["start"].to_numpy(), 1)
            np.add.at(delta, sel["end"].to_numpy(), -1)
            out[:, j] = np.cumsum(delta[:-1]) > 0
        return out


class _Layout:
    """Segments (composition classes), motifs and features of one contig."""

    def __init__(self, chrom: str):
        self.chrom = chrom
        self.segments: list[tuple[int, int, int, int]] = []  # start, end, class, strand(+1/-1)
        self.motifs: list[tuple[int, str]] = []  # genome start, genome-orientation sequence
        self.features: list[tuple] = []  # chrom, start, end, feature, strand, id, parent
        self.spacers: list[tuple[int, int]] = []  # intergenic intervals (for N/IUPAC)
        self.models: list[tuple] = []  # MODEL_COLUMNS rows (SO gene models)

    def add(self, start, end, cls, strand=1):
        if end > start:
            self.segments.append((start, end, cls, strand))

    def feature(self, start, end, name, strand, fid, parent=""):
        self.features.append((self.chrom, int(start), int(end), name, "+" if strand > 0 else "-", fid, parent))

    def model(self, start, end, so_type, strand, fid, parent="", phase="."):
        self.models.append((self.chrom, int(start), int(end), so_type, "+" if strand > 0 else "-", phase, fid,
                            parent))


def _revcomp(s: str) -> str:
    return _COMP[np.frombuffer(s.encode(), dtype=np.uint8)][::-1].tobytes().decode()


def _place(parts, pos, strand):
    """Map parts ``[(length, payload)]`` in transcription order to genome intervals."""
    lengths = np.array([p[0] for p in parts])
    ends = np.cumsum(lengths)
    starts = ends - lengths
    total = int(ends[-1])
    if strand > 0:
        g = [(pos + int(s), pos + int(e)) for s, e in zip(starts, ends)]
    else:
        g = [(pos + total - int(e), pos + total - int(s)) for s, e in zip(starts, ends)]
    return g, total


def _motif(lay, rng_motif, start_in_part, part_interval, strand, seq):
    """Write ``seq`` (sense) at ``start_in_part`` of a placed part (sense offset)."""
    s, e = part_interval
    if strand > 0:
        lay.motifs.append((s + start_in_part, seq))
        return s + start_in_part, s + start_in_part + len(seq)
    gs = e - start_in_part - len(seq)
    lay.motifs.append((gs, _revcomp(seq)))
    return gs, gs + len(seq)


def _gene(lay, rng, pos, gid):
    strand = 1 if rng.random() < 0.5 else -1
    n_exons = int(rng.integers(2, 6))
    parts = [(int(rng.integers(300, 500)), ("promoter", PROMOTER))]
    utr5, utr3 = int(rng.integers(60, 200)), int(rng.integers(150, 450))
    for i in range(n_exons):
        if i == 0:
            parts.append((utr5, ("5UTR", UTR5)))
        parts.append((int(rng.integers(60, 220)), ("cds", CDS)))
        if i == n_exons - 1:
            parts.append((utr3, ("3UTR", UTR3)))
        else:
            parts.append((int(rng.integers(150, 1200)), ("intron", INTRON)))
    # an open reading frame: the CDS length (over all exons) is a multiple of 3
    cds_idx = [i for i, p in enumerate(parts) if p[1][0] == "cds"]
    excess = sum(parts[i][0] for i in cds_idx) % 3
    parts[cds_idx[-1]] = (parts[cds_idx[-1]][0] - excess, parts[cds_idx[-1]][1])
    placed, total = _place(parts, pos, strand)
    for (start, end), (_, (kind, cls)) in zip(placed, parts):
        lay.add(start, end, cls, strand)
    kinds = [p[1][0] for p in parts]
    # promoter + TATA box
    prom = placed[0]
    lay.feature(*prom, "promoter_Tissue_invariant", strand, f"{gid}.promoter", gid)
    _motif(lay, rng, parts[0][0] - 30, prom, strand, "TATAAA")
    tx = [iv for iv, k in zip(placed, kinds) if k != "promoter"]
    lay.feature(min(s for s, _ in tx), max(e for _, e in tx), "protein_coding_gene", strand, gid)
    # exons = maximal runs of UTR/CDS parts between introns
    exon, n_exon, n_intron = [], 0, 0
    for idx, ((s, e), kind) in enumerate(zip(placed, kinds)):
        if kind == "promoter":
            continue
        if kind == "intron":
            n_intron += 1
            plen = parts[idx][0]
            donor = "GT" + ("A" if rng.random() < 0.6 else "G") + "AGT"
            _motif(lay, rng, 0, (s, e), strand, donor)
            acc = "".join(rng.choice(list("CT"), 5)) + "CAG"
            _motif(lay, rng, plen - 8, (s, e), strand, acc)
            lay.feature(s, e, "intron", strand, f"{gid}.intron{n_intron}", gid)
            d = (s, s + 8) if strand > 0 else (e - 8, e)
            a = (e - 8, e) if strand > 0 else (s, s + 8)
            lay.feature(*d, "splice_donor", strand, f"{gid}.donor{n_intron}", gid)
            lay.feature(*a, "splice_acceptor", strand, f"{gid}.acceptor{n_intron}", gid)
            continue
        exon.append((s, e))
        nxt = kinds[idx + 1] if idx + 1 < len(kinds) else "intron"
        if nxt == "intron":
            n_exon += 1
            lay.feature(min(x for x, _ in exon), max(y for _, y in exon), "exon", strand, f"{gid}.exon{n_exon}", gid)
            exon = []
        if kind == "5UTR":
            lay.feature(s, e, "5UTR", strand, f"{gid}.5UTR", gid)
        if kind == "3UTR":
            lay.feature(s, e, "3UTR", strand, f"{gid}.3UTR", gid)
            off = parts[idx][0] - int(rng.integers(12, 30)) - 6
            ps, pe = _motif(lay, rng, off, (s, e), strand, POLYA)
            lay.feature(ps, pe, "polyA_signal", strand, f"{gid}.polyA", gid)
    # start codon at the first CDS base, stop codon at the last three CDS bases
    cds = [(iv, parts[i][0]) for i, (iv, k) in enumerate(zip(placed, kinds)) if k == "cds"]
    _motif(lay, rng, 0, cds[0][0], strand, "ATG")
    _motif(lay, rng, cds[-1][1] - 3, cds[-1][0], strand, ["TAA", "TAG", "TGA"][int(rng.integers(3))])
    _gene_model(lay, placed, kinds, strand, gid)
    return total


def _gene_model(lay, placed, kinds, strand, gid):
    """The gene as SO gene model rows: gene -> mRNA -> exon / CDS / UTRs (children in
    genome order; exon numbers, CDS phases and parts listed in transcription order)."""
    tx = [(iv, k) for iv, k in zip(placed, kinds) if k != "promoter"]  # transcription order
    start, end = min(s for (s, _), _ in tx), max(e for (_, e), _ in tx)
    mrna = f"{gid}.t1"
    lay.model(start, end, "gene", strand, gid)
    lay.model(start, end, "mRNA", strand, mrna, gid)
    rows, cur, n_exon, done = [], [], 0, 0
    for (a, b), k in tx + [((0, 0), "intron")]:
        if k == "intron":
            if cur:
                n_exon += 1
                rows.append((min(x for x, _ in cur), max(y for _, y in cur), "exon", f"{mrna}.exon{n_exon}", "."))
            cur = []
            continue
        cur.append((a, b))
        if k == "cds":  # phase: bases to skip to the next codon start
            rows.append((a, b, "CDS", f"{mrna}.cds", str((3 - done % 3) % 3)))
            done += b - a
        else:
            so = "five_prime_UTR" if k == "5UTR" else "three_prime_UTR"
            rows.append((a, b, so, f"{mrna}.{so}", "."))
    for a, b, so, fid, phase in sorted(rows, key=lambda r: (r[0], r[2] != "exon")):
        lay.model(a, b, so, strand, fid, mrna, phase=phase)


def _enhancer(lay, rng, pos, eid):
    strand = 1 if rng.random() < 0.5 else -1
    n = int(rng.integers(300, 700))
    lay.add(pos, pos + n, ENHANCER, strand)
    lay.feature(pos, pos + n, "enhancer_Tissue_invariant", strand, eid)
    k = int(rng.integers(4, 8))
    offs = np.sort(rng.choice(np.arange(10, n - 20, 12), size=k, replace=False))
    for off in offs:
        m = TF_MOTIFS[int(rng.integers(len(TF_MOTIFS)))]
        lay.motifs.append((pos + int(off), m if rng.random() < 0.5 else _revcomp(m)))
    return n


def _ctcf(lay, rng, pos, cid):
    n = int(rng.integers(150, 250))
    strand = 1 if rng.random() < 0.5 else -1
    lay.add(pos, pos + n, CTCF, strand)
    lay.feature(pos, pos + n, "CTCF-bound", strand, cid)
    copies = 1 if rng.random() < 0.6 else 2
    starts = [n // 2 - len(CTCF_MOTIF) // 2] if copies == 1 else [n // 3 - 10, 2 * n // 3 - 10]
    for off in starts:
        m = np.array(list(CTCF_MOTIF))
        flip = rng.random(len(m)) < 0.08  # a few mismatches to the consensus
        m[flip] = rng.choice(list("ACGT"), int(flip.sum()))
        m = "".join(m)
        lay.motifs.append((pos + off, m if strand > 0 else _revcomp(m)))
    return n


def _layout_contig(chrom: str, length: int, rng: np.random.Generator, counter: dict,
                   leading_gap: bool, n_gaps: int) -> _Layout:
    lay = _Layout(chrom)
    pos = 0
    if leading_gap:
        g = int(rng.integers(100, 500))
        lay.add(0, g, GAP)
        pos = g
    gaps_left = n_gaps
    while True:
        spacer = int(rng.integers(200, 1800))
        gap = gaps_left > 0 and rng.random() < 0.08
        if gap:
            spacer += 400
        kind = rng.choice(["gene", "enhancer", "ctcf"], p=[0.5, 0.25, 0.25])
        est = {"gene": 9000, "enhancer": 700, "ctcf": 250}[kind]
        if pos + spacer + est + 200 > length:
            break
        s0 = pos
        if gap:
            glen = int(rng.integers(200, 3000))
            lay.add(s0, s0 + 200, INTERGENIC)
            lay.add(s0 + 200, s0 + 200 + glen, GAP)
            s0 += 200 + glen
            spacer -= 200
            gaps_left -= 1
        lay.add(s0, s0 + spacer, INTERGENIC)
        lay.spacers.append((s0, s0 + spacer))
        pos = s0 + spacer
        counter[kind] = counter.get(kind, 0) + 1
        fid = f"{kind}{counter[kind]:04d}"
        pos += {"gene": _gene, "enhancer": _enhancer, "ctcf": _ctcf}[kind](lay, rng, pos, fid)
    lay.add(pos, length, INTERGENIC)
    lay.spacers.append((pos, length))
    return lay


def _realise(lay: _Layout, length: int, rng: np.random.Generator) -> np.ndarray:
    """Draw the bases of a laid-out contig (vectorised) and write the motifs."""
    seg = np.array(lay.segments, dtype=np.int64).reshape(-1, 4)
    seg = seg[np.argsort(seg[:, 0], kind="stable")]
    assert seg[0, 0] == 0 and seg[-1, 1] == length and np.all(seg[1:, 0] == seg[:-1, 1]), "layout has holes"
    lens = seg[:, 1] - seg[:, 0]
    cls = np.repeat(seg[:, 2], lens)
    strand = np.repeat(seg[:, 3], lens)
    cum = np.cumsum(COMPOSITION, axis=1)[cls]  # [L, 4]
    u = rng.random(length)
    idx = np.minimum((u[:, None] > cum).sum(axis=1), 3)
    seq = BASES[idx]
    minus = strand < 0
    seq[minus] = _COMP[seq[minus]]
    seq[cls == GAP] = ord("N")
    for start, motif in lay.motifs:
        seq[start:start + len(motif)] = np.frombuffer(motif.encode(), dtype=np.uint8)
    return seq


def _find(seq: np.ndarray, motif: str) -> np.ndarray:
    m = np.frombuffer(motif.encode(), dtype=np.uint8)
    if len(seq) < len(m):
        return np.zeros(0, dtype=np.int64)
    win = np.lib.stride_tricks.sliding_window_view(seq, len(m))
    return np.flatnonzero((win == m).all(axis=1))


def _purge_polya(seq: np.ndarray, planted: set, rng: np.random.Generator) -> None:
    """Remove every AATAAA / TTTATT not planted as a polyA signal."""
    for _ in range(20):
        hits = [h for motif in (POLYA, _revcomp(POLYA)) for h in _find(seq, motif) if int(h) not in planted]
        if not hits:
            return
        hits = np.array(hits)
        # change the middle T/A (offset 2 or 3) to C or G
        pos = hits + 3
        seq[pos] = np.where(rng.random(len(pos)) < 0.5, ord("C"), ord("G"))
    raise RuntimeError("could not purge accidental polyA signals")  # pragma: no cover


def _decorate(seq: np.ndarray, lay: _Layout, rng: np.random.Generator, n_iupac: int) -> None:
    """IUPAC codes in intergenic spacers, then soft-masked stretches anywhere."""
    sp = [(s + 20, e - 20) for s, e in lay.spacers if e - s > 60]
    if sp and n_iupac:
        which = rng.integers(len(sp), size=n_iupac)
        for i in which:
            s, e = sp[int(i)]
            p = int(rng.integers(s, e))
            if chr(seq[p]) in IUPAC_FOR:
                codes = IUPAC_FOR[chr(seq[p])]
                seq[p] = ord(codes[int(rng.integers(len(codes)))])
    length = len(seq)
    n_mask = max(1, length // 6_000)
    starts = rng.integers(0, max(1, length - 50), size=n_mask)
    lens = rng.integers(100, 2500, size=n_mask)
    delta = np.zeros(length + 1, dtype=np.int32)
    np.add.at(delta, starts, 1)
    np.add.at(delta, np.minimum(starts + lens, length), -1)
    mask = np.cumsum(delta[:-1]) > 0
    upper = (seq >= ord("A")) & (seq <= ord("Z"))
    seq[mask & upper] += 32


def simulate_genome(seed: int = DEFAULT_SEED, length_scale: float = 1.0,
                    contigs: Optional[Sequence[tuple[str, int]]] = None) -> SimulatedGenome:
    """Simulate a genome deterministically from ``seed``.

    Args:
        seed: random seed (same seed, same genome).
        length_scale: multiplies the lengths of the long contigs (the short contig stays
            shorter than one window).
        contigs: ``[(name, length)]`` instead of :data:`CONTIGS`.
    """
    if length_scale <= 0:
        raise ValueError(f"length_scale must be positive, got {length_scale}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5E6]))
    spec = list(contigs) if contigs is not None else [
        (name, n if n < 10_000 else max(12_000, int(round(n * length_scale)))) for name, n in CONTIGS]
    out, feats, models, counter = {}, [], [], {}
    for i, (name, length) in enumerate(spec):
        long = length >= 10_000
        lay = _layout_contig(name, length, rng, counter, leading_gap=(i == 0 and long),
                             n_gaps=(1 + i % 2) if long else 0)
        seq = _realise(lay, length, rng)
        planted = set()
        for start, motif in lay.motifs:
            if motif in (POLYA, _revcomp(POLYA)):
                planted.add(start)
        _purge_polya(seq, planted, rng)
        _open_reading_frames(seq, lay.models)
        _decorate(seq, lay, rng, n_iupac=(6 if long else 1))
        out[name] = seq.tobytes().decode("ascii")
        feats.extend(lay.features)
        models.extend(lay.models)
    import pandas as pd

    df = pd.DataFrame(feats, columns=["chrom", "start", "end", "feature", "strand", "id", "parent"])
    order = {n: i for i, (n, _) in enumerate(spec)}
    df = df.sort_values(["chrom", "start", "end", "feature"], key=lambda c: c.map(order) if c.name == "chrom" else c,
                        kind="stable").reset_index(drop=True)
    log.info("simulated %d contigs, %d bp, %d features (seed %d)", len(out),
             sum(map(len, out.values())), len(df), seed)
    # models stay in layout order: each gene, then its mRNA, then the mRNA's parts
    mdf = pd.DataFrame(models, columns=MODEL_COLUMNS)
    return SimulatedGenome(seed=int(seed), contigs=out, features=df, models=mdf)


def _open_reading_frames(seq: np.ndarray, models: list) -> None:
    """Remove in-frame stop codons (all but the last codon) from every planted CDS by
    changing their first base T to C on the sense strand (no random draws; C is in no
    planted motif, so no motif is made or broken)."""
    cds: dict[str, list] = {}
    for chrom, start, end, so_type, strand, _phase, _fid, parent in models:
        if so_type == "CDS":
            cds.setdefault(parent, []).append((start, end, strand))
    for parts in cds.values():
        parts.sort()
        idx = np.concatenate([np.arange(a, b) for a, b, _ in parts])
        minus = parts[0][2] == "-"
        if minus:
            idx = idx[::-1]
        sense = seq[idx] if not minus else _COMP[seq[idx]]
        codons = sense[: len(sense) // 3 * 3].reshape(-1, 3)[:-1]  # the last codon is the stop
        stop = np.zeros(len(codons), bool)
        for c in STOP_CODONS:
            stop |= (codons == np.frombuffer(c.encode(), np.uint8)).all(axis=1)
        first = idx[np.flatnonzero(stop) * 3]
        seq[first] = ord("G") if minus else ord("C")


# ----------------------------------------------------------------------------- writing
def write_fasta(contigs: dict, path: str, line_width: int = 60, overwrite: bool = False) -> None:
    """Write FASTA and its ``.fai`` index (samtools layout)."""
    fai_rows = []
    with atomic_path(path, overwrite=overwrite) as tmp:
        offset = 0
        with open(tmp, "wb") as fh:
            for name, seq in contigs.items():
                header = f">{name}\n".encode()
                fh.write(header)
                offset += len(header)
                data = seq.encode("ascii")
                lines = [data[i:i + line_width] for i in range(0, len(data), line_width)]
                body = b"\n".join(lines) + b"\n"
                fh.write(body)
                fai_rows.append(f"{name}\t{len(data)}\t{offset}\t{line_width}\t{line_width + 1}\n")
                offset += len(body)
    with atomic_path(path + ".fai", overwrite=overwrite) as tmp:
        with open(tmp, "w") as fh:
            fh.writelines(fai_rows)


def _gff3_header(genome: SimulatedGenome, what: str) -> str:
    return ("##gff-version 3\n" + "".join(f"##sequence-region {n} 1 {len(q)}\n" for n, q in genome.contigs.items())
            + f"# genoseg simulate --seed {genome.seed}: {what}\n")


def write_gff3(genome: SimulatedGenome, path: str, overwrite: bool = False) -> None:
    """Write the truth as GFF3 (1-based closed; type = feature name)."""
    df = genome.features
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "w") as fh:
            fh.write(_gff3_header(genome, "planted elements (truth)"))
            attrs = "ID=" + df["id"].astype(str)
            has_parent = df["parent"].astype(bool)
            attrs = attrs.where(~has_parent, attrs + ";Parent=" + df["parent"].astype(str))
            import pandas as pd

            table = pd.DataFrame({
                "seqid": df["chrom"], "source": "genoseg_simulate", "type": df["feature"],
                "start": df["start"] + 1, "end": df["end"], "score": ".", "strand": df["strand"],
                "phase": ".", "attributes": attrs,
            })
            table.to_csv(fh, sep="\t", header=False, index=False)


def write_gene_models(genome: SimulatedGenome, path: str, overwrite: bool = False) -> None:
    """Write the genes as a Sequence Ontology GFF3 (``gene -> mRNA -> exon / CDS /
    five_prime_UTR / three_prime_UTR``; 1-based closed; CDS with phase; one ``###``
    block per gene), the layout of GENCODE/Ensembl annotations."""
    df = genome.models
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "w") as fh:
            fh.write(_gff3_header(genome, "planted genes (truth gene models)"))
            for i, row in enumerate(df.itertuples(index=False)):
                if row.type == "gene" and i:
                    fh.write("###\n")  # all parts of the previous gene are written
                attrs = f"ID={row.id}" + (f";Parent={row.parent}" if row.parent else "")
                fh.write(f"{row.chrom}\tgenoseg_simulate\t{row.type}\t{row.start + 1}\t{row.end}\t.\t"
                         f"{row.strand}\t{row.phase}\t{attrs}\n")


def write_simulation(genome: SimulatedGenome, outdir: str, overwrite: bool = False) -> dict:
    """Write ``genome.fa`` (+ ``.fai``), ``truth.gff3`` (model feature names) and
    ``truth_genes.gff3`` (SO gene models) into ``outdir``."""
    os.makedirs(outdir, exist_ok=True)
    paths = {"fasta": os.path.join(outdir, "genome.fa"), "truth": os.path.join(outdir, "truth.gff3"),
             "truth_genes": os.path.join(outdir, "truth_genes.gff3")}
    write_fasta(genome.contigs, paths["fasta"], overwrite=overwrite)
    write_gff3(genome, paths["truth"], overwrite=overwrite)
    write_gene_models(genome, paths["truth_genes"], overwrite=overwrite)
    return paths
