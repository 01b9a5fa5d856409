"""Decoding one gene-bearing region: probabilities + sequence -> transcripts.

:class:`DecoderParams` holds every number the decoder uses (documented defaults);
:func:`decode_region` builds the region's emissions, junction flags and splice scores,
runs the exact Viterbi kernel and turns the state path into :class:`Transcript` records.
Coordinates are 0-based half-open genome positions.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np

from ..errors import GenosegError
from . import statemodel as sm
from . import viterbi as vt


@dataclasses.dataclass(frozen=True)
class DecoderParams:
    """Scores (natural-log units) and region settings of the gene decoder.

    Emissions: a base in class ``c`` scores ``sum_f w_f * EXPECTED[c, f] * logit(p_f)``
    against intergenic (``feature_weights`` = ``w_f``; probabilities clipped to
    ``[eps, 1 - eps]``, ``eps`` = half a quantisation step). Junctions add
    ``splice_weight * log p`` of the splice-site feature (max over ``splice_window`` bases
    around the junction) to every intron opening/closing. Constant log-probabilities
    penalise each transcript (``tx_start``, extra ``lncrna_start`` for a non-coding one),
    CDS start/end and intron (``intron_open`` + ``intron_close``); staying in a state
    costs nothing (lengths come from the evidence, not from a prior).

    Regions: bases whose gene-ness (max of the gene/lncRNA probabilities, or of
    exon/intron for models without them) reaches ``region_threshold`` are gene-bearing;
    regions are those bases widened by ``region_margin`` bp on each side and merged when
    they touch, then decoded independently. A region longer than ``max_region`` bp is
    cut at its least gene-like base (memory ~100 bytes per base of a region).

    Output filters: coding transcripts need a CDS of at least ``min_cds_length`` bp
    (stop codon included), non-coding ones ``min_lncrna_length`` exonic bp.
    """

    feature_weights: tuple = (("protein_coding_gene", 1.0), ("lncRNA", 1.0), ("exon", 0.5), ("intron", 0.5),
                              ("5UTR", 1.0), ("3UTR", 1.0))
    splice_weight: float = 2.0
    splice_window: int = 8
    splice_tolerance: int = 4
    splice_prior_weight: float = 6.0
    tx_start: float = -8.0
    tx_end: float = 0.0
    lncrna_start: float = -4.0
    cds_start: float = -1.0
    cds_end: float = -1.0
    intron_open: float = -2.0
    intron_close: float = 0.0
    region_threshold: float = 0.3
    region_margin: int = 300
    max_region: int = 3_000_000
    min_cds_length: int = 90
    min_lncrna_length: int = 200

    def __post_init__(self):
        names = [f for f, _ in self.feature_weights]
        bad = [f for f in names if f not in sm.EMISSION_FEATURES]
        if bad:
            raise GenosegError(f"gene decoder: feature weights for {bad}; known: {', '.join(sm.EMISSION_FEATURES)}")
        if any(w < 0 for _, w in self.feature_weights) or self.splice_weight < 0:
            raise GenosegError("gene decoder: weights must be >= 0")
        if not 0 < self.region_threshold < 1:
            raise GenosegError(f"gene decoder: region_threshold must be in (0, 1), got {self.region_threshold}")
        if self.splice_window < 1 or self.region_margin < 0 or self.max_region < 10 * max(self.region_margin, 100):
            raise GenosegError("gene decoder: need splice_window >= 1, region_margin >= 0 and "
                               "max_region >= 10 x max(region_margin, 100)")
        if self.min_cds_length < 6 or self.min_lncrna_length < 1:
            raise GenosegError("gene decoder: min_cds_length >= 6 and min_lncrna_length >= 1")

    def constants(self) -> np.ndarray:
        c = np.zeros(9)
        c[sm.T_TX_START] = self.tx_start
        c[sm.T_NC_START] = self.tx_start + self.lncrna_start
        c[sm.T_TX_END] = self.tx_end
        c[sm.T_CDS_START] = self.cds_start
        c[sm.T_CDS_END] = self.cds_end
        c[sm.T_INTRON_OPEN] = self.intron_open
        c[sm.T_INTRON_CLOSE] = self.intron_close
        return c


@dataclasses.dataclass
class Transcript:
    """One decoded transcript (0-based half-open genome coordinates, genome order).

    ``exons``/``cds``/``utr5``/``utr3``: ``int64 [k, 2]``; ``cds_phase``: GFF3 phase of
    each CDS segment; ``protein``: translation without the final stop ("" for lncRNA);
    ``score``: mean per-base support (exon probability on exons, intron probability on
    introns); ``exon_scores``: mean exon probability per exon.
    """

    chrom: str
    strand: str
    start: int
    end: int
    coding: bool
    exons: np.ndarray
    cds: np.ndarray
    cds_phase: list
    utr5: np.ndarray
    utr3: np.ndarray
    score: float
    exon_scores: np.ndarray
    protein: str = ""

    @property
    def introns(self) -> np.ndarray:
        return np.stack([self.exons[:-1, 1], self.exons[1:, 0]], axis=1)


class Decoder:
    """A decoder for one model's feature list (tables built once, shared by threads)."""

    def __init__(self, features: Sequence[str], params: Optional[DecoderParams] = None):
        self.params = params or DecoderParams()
        self.features = list(features)
        col = {f: i for i, f in enumerate(self.features)}
        weights = dict(self.params.feature_weights)
        self.columns = [col.get(f) for f in sm.EMISSION_FEATURES]
        self.weights = np.array([weights.get(f, 0.0) for f in sm.EMISSION_FEATURES], np.float32)
        if all(self.columns[sm.EMISSION_FEATURES.index(f)] is None for f in ("exon", "intron")):
            raise GenosegError(f"gene models need exon and/or intron probabilities; the model predicts "
                               f"{', '.join(self.features)}")
        self.lncrna = "lncRNA" in col
        self.donor, self.acceptor = col.get("splice_donor"), col.get("splice_acceptor")
        self.exon_col, self.intron_col = col.get("exon"), col.get("intron")
        gene_cols = [col[f] for f in ("protein_coding_gene", "lncRNA") if f in col]
        self.gene_cols = gene_cols or [c for c in (self.exon_col, self.intron_col) if c is not None]
        eps = 0.5 / 255
        p = np.clip(np.arange(256) / 255.0, eps, 1 - eps)
        self.logit = np.log(p / (1 - p)).astype(np.float32)
        self.log_p = np.log(p).astype(np.float32)
        self.edges = sm.edges(self.params.constants(), lncrna=self.lncrna)
        self.cls = sm.state_classes()
        self._tables()

    def _tables(self) -> None:
        names = sm.state_names()
        self.state_strand = np.array([-1] + [0] * sm.K + [1] * sm.K, np.int64)
        self.state_class = self.cls
        frame = {"ST1": 0, "C0": 0, "C1": 2, "C1T": 2, "C2": 1}  # GFF3 phase of a CDS starting here
        self.phase_of = np.array([frame.get(n[:-1], 0) for n in names], np.int64)

    # --------------------------------------------------------------------- one region
    def arrays(self, seq: np.ndarray, codes: np.ndarray):
        """Emissions, flags and junction scores of a region (both strands)."""
        emis = vt.emissions(codes, self.columns, self.weights, self.logit)
        rc = vt.revcomp(seq)
        flags = vt.junction_flags(seq)  # [2, n + 1]: plus, minus strand per genome junction
        don = codes[:, self.donor] if self.donor is not None else None
        acc = codes[:, self.acceptor] if self.acceptor is not None else None
        w, win, tol = self.params.splice_weight, self.params.splice_window, self.params.splice_tolerance
        plus = vt.junction_scores(don, acc, self.logit, w, win, tol)
        minus = vt.junction_scores(None if don is None else don[::-1], None if acc is None else acc[::-1],
                                   self.logit, w, win, tol)[:, ::-1]
        if self.params.splice_prior_weight:
            plus += self.params.splice_prior_weight * vt.splice_prior(seq, flags[0])
            minus += self.params.splice_prior_weight * vt.splice_prior(rc, flags[1][::-1])[:, ::-1]
        jsc = np.ascontiguousarray(np.stack([plus, minus]))
        return emis, np.ascontiguousarray(flags), jsc

    def decode(self, chrom: str, start: int, seq: np.ndarray, codes: np.ndarray,
               compiled: bool = True) -> list[Transcript]:
        """Decode the region ``[start, start + len(seq))`` of ``chrom``.

        ``seq``: base codes (:func:`viterbi.encode`); ``codes``: ``uint8 [n, F]``
        probabilities (``p * 255``) in the model's feature order.
        """
        if len(seq) < 3:
            return []
        emis, flags, jsc = self.arrays(seq, codes)
        path, _ = vt.decode(emis, flags, jsc, self.edges, self.cls, compiled=compiled)
        return self.transcripts(chrom, start, seq, codes, path)

    # ---------------------------------------------------------------- path -> records
    def transcripts(self, chrom: str, start: int, seq: np.ndarray, codes: np.ndarray,
                    path: np.ndarray) -> list[Transcript]:
        """State path -> transcripts (runs of non-intergenic states), with their exons,
        CDS (phase from the frame state at each segment's 5' end), UTRs, scores and
        protein; those under the minimum lengths are dropped."""
        from ..evaluate import intervals_from_mask

        cls = self.state_class[path]
        exonic = np.isin(cls, (sm.E_U5, sm.E_CDS, sm.E_U3, sm.E_NC_EXON))
        ts, te = intervals_from_mask(path != sm.IG)
        if not len(ts):
            return []
        runs = {k: intervals_from_mask(m) for k, m in
                (("exon", exonic), ("cds", cls == sm.E_CDS), ("utr5", cls == sm.E_U5), ("utr3", cls == sm.E_U3))}
        # runs are sorted and each lies in one transcript: slice them per transcript
        bounds = {k: (np.searchsorted(s, ts), np.searchsorted(s, te)) for k, (s, _) in runs.items()}
        cds_bp = np.concatenate([[0], np.cumsum(runs["cds"][1] - runs["cds"][0])])
        exon_bp = np.concatenate([[0], np.cumsum(runs["exon"][1] - runs["exon"][0])])
        lo, hi = bounds["cds"]
        coding = hi > lo
        long_enough = np.where(coding, cds_bp[hi] - cds_bp[lo] >= self.params.min_cds_length,
                               exon_bp[bounds["exon"][1]] - exon_bp[bounds["exon"][0]] >= self.params.min_lncrna_length)
        support = self._support(codes, exonic, path != sm.IG)
        exon_p = codes[:, self.exon_col].astype(np.float64) / 255 if self.exon_col is not None else support
        es, ee = runs["exon"]
        csum = np.concatenate([[0.0], np.cumsum(exon_p)])
        exon_mean = (csum[ee] - csum[es]) / np.maximum(ee - es, 1)
        ssum = np.concatenate([[0.0], np.cumsum(support)])
        out = []
        for t in np.flatnonzero(long_enough).tolist():
            a, b = int(ts[t]), int(te[t])
            iv = {k: np.stack([runs[k][0][bounds[k][0][t]:bounds[k][1][t]],
                               runs[k][1][bounds[k][0][t]:bounds[k][1][t]]], axis=1).astype(np.int64) for k in runs}
            strand = int(self.state_strand[path[a]])
            cds = iv["cds"]
            five_prime = cds[:, 0] if strand == 0 else cds[:, 1] - 1
            tx = Transcript(
                chrom=chrom, strand="+-"[strand], start=start + a, end=start + b, coding=bool(coding[t]),
                exons=iv["exon"] + start, cds=cds + start,
                cds_phase=[int(self.phase_of[path[i]]) for i in five_prime.tolist()],
                utr5=iv["utr5"] + start, utr3=iv["utr3"] + start,
                score=float((ssum[b] - ssum[a]) / (b - a)),
                exon_scores=exon_mean[bounds["exon"][0][t]:bounds["exon"][1][t]])
            if tx.coding:
                tx.protein = translate(seq, cds, strand)
            out.append(tx)
        return out

    def _support(self, codes, exonic, in_tx) -> np.ndarray:
        """Per-base agreement of the model with the decoded label (exon or intron)."""
        pe = codes[:, self.exon_col].astype(np.float64) / 255 if self.exon_col is not None else None
        pi = codes[:, self.intron_col].astype(np.float64) / 255 if self.intron_col is not None else None
        if pe is None:
            pe = 1 - pi
        if pi is None:
            pi = 1 - pe
        return np.where(exonic, pe, np.where(in_tx, pi, 0.0))


# ----------------------------------------------------------------------- translation
_AA_TCAG = "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"
_TCAG_OF = {vt.T: 0, vt.C: 1, vt.A: 2, vt.G: 3}
CODON_TABLE = np.full(5 * 5 * 5, ord("X"), np.uint8)  # index 25 a + 5 b + c over codes 0-4
for _a in range(4):
    for _b in range(4):
        for _c in range(4):
            CODON_TABLE[25 * _a + 5 * _b + _c] = ord(_AA_TCAG[16 * _TCAG_OF[_a] + 4 * _TCAG_OF[_b] + _TCAG_OF[_c]])


def cds_sequence(seq: np.ndarray, cds: np.ndarray, strand: int) -> np.ndarray:
    """Sense-strand base codes of the CDS segments (``cds`` relative to ``seq``)."""
    parts = np.concatenate([seq[a:b] for a, b in cds.tolist()])
    return vt.revcomp(parts) if strand == 1 else parts


def translate(seq: np.ndarray, cds: np.ndarray, strand: int) -> str:
    """Protein of a CDS (standard code) without its final stop codon; raises
    RuntimeError if the decoder produced a CDS that is not a clean open reading frame
    (a bug: the state model excludes it)."""
    x = cds_sequence(seq, cds, strand)
    if len(x) % 3:
        raise RuntimeError(f"decoder bug: CDS length {len(x)} is not a multiple of 3")
    cod = x.reshape(-1, 3).astype(np.int64)
    aa = CODON_TABLE[25 * cod[:, 0] + 5 * cod[:, 1] + cod[:, 2]].tobytes().decode()
    if not aa.startswith("M") or not aa.endswith("*") or "*" in aa[:-1]:
        raise RuntimeError(f"decoder bug: CDS does not translate to M...*: {aa[:20]}...{aa[-20:]}")
    return aa[:-1]
