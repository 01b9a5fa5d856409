"""The gene structure state model decoded by :mod:`genoseg.genes`.

One state per base. Per strand 30 states, plus one shared intergenic state ``IG``
(61 in all). Written for the sense strand; the minus strand is the mirror image (its
edges reversed, its sequence reverse-complemented, see :func:`edges`):

==========  ==================================================================
``U5``      5' UTR exon base             ``U5I``  intron inside the 5' UTR
``ST1/ST2`` the A and T of the ATG start codon (its G is the first ``C2``)
``C0/C1/C2`` CDS base at codon position 1, 2, 3 (frame of the base)
``C1T``     codon position 2 whose codon began with a T before an intron
``I0``      intron between codons (phase 0)
``I1/I1T``  intron after codon position 1 (phase 1); ``I1T``: that base was T
``I2/I2A/I2G`` intron after codon position 2 (phase 2); ``I2A``: the codon so far
            is TA, ``I2G``: TG (``I2``: anything else)
``SP1-3``   the three bases of the stop codon
``U3``      3' UTR exon base             ``U3I``  intron inside the 3' UTR
``N``       lncRNA exon base             ``NI``   lncRNA intron
``X^``      the first base of an intron of kind ``X`` (every intron state above)
==========  ==================================================================

The sequence rules are predicates on the bases next to a junction (``FLAG_*`` bits,
computed in :mod:`genoseg.genes.viterbi`) that an edge requires:

- an intron starts with GT (or GC) and ends with AG (``DON``, ``ACC``);
- a CDS starts with ATG (``ST1 -> ST2 -> C2``, entered where ``ATG`` begins) and ends
  with a stop codon (``C2 -> SP1 -> SP2 -> SP3``, entered where TAA/TAG/TGA begins);
  start and stop codons are never split by an intron;
- no stop codon in frame before the last: a codon inside one exon is checked when its
  third base is entered (``C1 -> C2``, codon ``x[j-2:j+1]``); a codon split by an
  intron is checked by the intron states that remember its first one or two bases
  (``I1T``, ``I2A``, ``I2G``, ``C1T``): e.g. ``I2A -> C2`` is only allowed where the
  next base is neither A nor G (no TAA/TAG). Checks that see an acceptor's G as the
  codon's first base are harmless (no stop codon starts with G);
- the CDS length is a multiple of 3 because the frame advances one position per CDS
  base, introns keep it, and the CDS can only end after a ``C2``;
- an intron is entered through its first-base state ``X^``, which cannot leave the
  intron, so introns are at least 2 bases long, and then at least 4 (GT and AG cannot
  overlap in 2 or 3 bases): a 1-base "intron" that is its own GT and AG never appears.

Every path through the states is therefore a valid gene structure, and the Viterbi
path is the best valid structure (exact, no heuristics).
"""

from __future__ import annotations

import numpy as np

INTRONS = ("U5I", "I0", "I1", "I1T", "I2", "I2A", "I2G", "U3I", "NI")
STRAND_STATES = ("U5", "U5I", "ST1", "ST2", "C0", "C1", "C1T", "C2", "I0", "I1", "I1T", "I2", "I2A", "I2G",
                 "SP1", "SP2", "SP3", "U3", "U3I", "N", "NI") + tuple(f"{x}^" for x in INTRONS)
K = len(STRAND_STATES)
IG = 0
N_STATES = 1 + 2 * K

#: Emission classes: states of one class expect the same per-base feature labels.
CLASSES = ("intergenic", "utr5", "cds", "utr3", "intron", "nc_exon", "nc_intron")
(E_IG, E_U5, E_CDS, E_U3, E_INTRON, E_NC_EXON, E_NC_INTRON) = range(len(CLASSES))
_CLASS_OF_BASE = {"U5": E_U5, "U5I": E_INTRON, "ST1": E_CDS, "ST2": E_CDS, "C0": E_CDS, "C1": E_CDS, "C1T": E_CDS,
             "C2": E_CDS, "I0": E_INTRON, "I1": E_INTRON, "I1T": E_INTRON, "I2": E_INTRON, "I2A": E_INTRON,
             "I2G": E_INTRON, "SP1": E_CDS, "SP2": E_CDS, "SP3": E_CDS, "U3": E_U3, "U3I": E_INTRON,
             "N": E_NC_EXON, "NI": E_NC_INTRON}
_CLASS_OF = {**_CLASS_OF_BASE, **{f"{x}^": _CLASS_OF_BASE[x] for x in INTRONS}}

#: Features of the published models used for emissions, and the label each class
#: expects for them (1 = the base is inside that feature). Splice sites are scored at
#: junctions instead (see ``viterbi.junction_scores``).
EMISSION_FEATURES = ("protein_coding_gene", "lncRNA", "exon", "intron", "5UTR", "3UTR")
EXPECTED = np.array([
    # gene lnc exon intron 5UTR 3UTR
    [0, 0, 0, 0, 0, 0],  # intergenic
    [1, 0, 1, 0, 1, 0],  # 5' UTR exon
    [1, 0, 1, 0, 0, 0],  # CDS
    [1, 0, 1, 0, 0, 1],  # 3' UTR exon
    [1, 0, 0, 1, 0, 0],  # intron of a coding gene
    [0, 1, 1, 0, 0, 0],  # lncRNA exon
    [0, 1, 0, 1, 0, 0],  # lncRNA intron
], dtype=np.float32)

# Junction predicates (bits of the per-junction flags; junction j lies between bases
# j-1 and j of the sense sequence x).
FLAG_NAMES = ("DON", "ACC", "ATG", "STOP", "PREV_T", "PREV_NOT_T", "PREV2_TA", "PREV2_TG", "PREV2_OTHER",
              "PREV_A", "PREV_G", "PREV_NOT_AG", "C1C2_OK", "C1TC2_OK", "NEXT_NOT_AG", "NEXT_NOT_A")
FLAG = {name: 1 << i for i, name in enumerate(FLAG_NAMES)}

#: Junction score kinds (added to an edge's constant): splice-site support.
SCORE_NONE, SCORE_DONOR, SCORE_ACCEPTOR = -1, 0, 1

# Edge kinds, whose constant log-probabilities come from DecoderParams.
(T_STAY, T_NEXT, T_TX_START, T_TX_END, T_CDS_START, T_CDS_END, T_INTRON_OPEN, T_INTRON_CLOSE,
 T_NC_START) = range(9)

# Sense-strand edges: (from, to, required flags, junction score, constant kind).
# "IG" is the shared intergenic state.
_SENSE_EDGES = [
    # transcript starts and ends
    ("IG", "U5", (), SCORE_NONE, T_TX_START),
    ("IG", "ST1", ("ATG",), SCORE_NONE, T_TX_START),
    ("IG", "N", (), SCORE_NONE, T_NC_START),
    ("SP3", "IG", (), SCORE_NONE, T_TX_END),
    ("U3", "IG", (), SCORE_NONE, T_TX_END),
    ("N", "IG", (), SCORE_NONE, T_TX_END),
    # 5' UTR, start codon
    ("U5", "U5", (), SCORE_NONE, T_STAY),
    ("U5", "U5I", ("DON",), SCORE_DONOR, T_INTRON_OPEN),
    ("U5I", "U5I", (), SCORE_NONE, T_STAY),
    ("U5I", "U5", ("ACC",), SCORE_ACCEPTOR, T_INTRON_CLOSE),
    ("U5I", "ST1", ("ACC", "ATG"), SCORE_ACCEPTOR, T_INTRON_CLOSE),
    ("U5", "ST1", ("ATG",), SCORE_NONE, T_CDS_START),
    ("ST1", "ST2", (), SCORE_NONE, T_NEXT),
    ("ST2", "C2", (), SCORE_NONE, T_NEXT),
    # codons inside an exon
    ("C0", "C1", (), SCORE_NONE, T_NEXT),
    ("C1", "C2", ("C1C2_OK",), SCORE_NONE, T_NEXT),
    ("C1T", "C2", ("C1TC2_OK",), SCORE_NONE, T_NEXT),
    ("C2", "C0", (), SCORE_NONE, T_NEXT),
    # introns: donors remember the open codon's bases, acceptors check the codon
    ("C2", "I0", ("DON",), SCORE_DONOR, T_INTRON_OPEN),
    ("C0", "I1", ("DON", "PREV_NOT_T"), SCORE_DONOR, T_INTRON_OPEN),
    ("C0", "I1T", ("DON", "PREV_T"), SCORE_DONOR, T_INTRON_OPEN),
    ("C1", "I2", ("DON", "PREV2_OTHER"), SCORE_DONOR, T_INTRON_OPEN),
    ("C1", "I2A", ("DON", "PREV2_TA"), SCORE_DONOR, T_INTRON_OPEN),
    ("C1", "I2G", ("DON", "PREV2_TG"), SCORE_DONOR, T_INTRON_OPEN),
    ("C1T", "I2", ("DON", "PREV_NOT_AG"), SCORE_DONOR, T_INTRON_OPEN),
    ("C1T", "I2A", ("DON", "PREV_A"), SCORE_DONOR, T_INTRON_OPEN),
    ("C1T", "I2G", ("DON", "PREV_G"), SCORE_DONOR, T_INTRON_OPEN),
    ("I0", "I0", (), SCORE_NONE, T_STAY),
    ("I1", "I1", (), SCORE_NONE, T_STAY),
    ("I1T", "I1T", (), SCORE_NONE, T_STAY),
    ("I2", "I2", (), SCORE_NONE, T_STAY),
    ("I2A", "I2A", (), SCORE_NONE, T_STAY),
    ("I2G", "I2G", (), SCORE_NONE, T_STAY),
    ("I0", "C0", ("ACC",), SCORE_ACCEPTOR, T_INTRON_CLOSE),
    ("I1", "C1", ("ACC",), SCORE_ACCEPTOR, T_INTRON_CLOSE),
    ("I1T", "C1T", ("ACC",), SCORE_ACCEPTOR, T_INTRON_CLOSE),
    ("I2", "C2", ("ACC",), SCORE_ACCEPTOR, T_INTRON_CLOSE),
    ("I2A", "C2", ("ACC", "NEXT_NOT_AG"), SCORE_ACCEPTOR, T_INTRON_CLOSE),
    ("I2G", "C2", ("ACC", "NEXT_NOT_A"), SCORE_ACCEPTOR, T_INTRON_CLOSE),
    # stop codon, 3' UTR
    ("C2", "SP1", ("STOP",), SCORE_NONE, T_CDS_END),
    ("SP1", "SP2", (), SCORE_NONE, T_NEXT),
    ("SP2", "SP3", (), SCORE_NONE, T_NEXT),
    ("SP3", "U3", (), SCORE_NONE, T_NEXT),
    ("SP3", "U3I", ("DON",), SCORE_DONOR, T_INTRON_OPEN),
    ("U3", "U3", (), SCORE_NONE, T_STAY),
    ("U3", "U3I", ("DON",), SCORE_DONOR, T_INTRON_OPEN),
    ("U3I", "U3I", (), SCORE_NONE, T_STAY),
    ("U3I", "U3", ("ACC",), SCORE_ACCEPTOR, T_INTRON_CLOSE),
    # lncRNA: exons and introns without a CDS
    ("N", "N", (), SCORE_NONE, T_STAY),
    ("N", "NI", ("DON",), SCORE_DONOR, T_INTRON_OPEN),
    ("NI", "NI", (), SCORE_NONE, T_STAY),
    ("NI", "N", ("ACC",), SCORE_ACCEPTOR, T_INTRON_CLOSE),
]


def _with_intron_entries(edges_):
    """Edges into an intron (from another state) enter its first-base state ``X^``,
    which moves on to ``X``."""
    out = [(a, f"{b}^" if b in INTRONS and a != b else b, need, score, kind) for a, b, need, score, kind in edges_]
    return out + [(f"{x}^", x, (), SCORE_NONE, T_STAY) for x in INTRONS]


_SENSE_EDGES = _with_intron_entries(_SENSE_EDGES)


def state_index(name: str, strand: int) -> int:
    """Index of a state: ``"IG"`` or a :data:`STRAND_STATES` name on strand 0 (+) / 1 (-)."""
    return IG if name == "IG" else 1 + strand * K + STRAND_STATES.index(name)


def state_names() -> list[str]:
    return ["IG"] + [f"{s}{'+-'[k]}" for k in (0, 1) for s in STRAND_STATES]


def state_classes() -> np.ndarray:
    """Emission class of every state, ``int64 [N_STATES]``."""
    out = np.zeros(N_STATES, np.int64)
    for k in (0, 1):
        for s in STRAND_STATES:
            out[state_index(s, k)] = _CLASS_OF[s]
    return out


def edges(constants: np.ndarray, lncrna: bool = True):
    """All edges of the two-strand model in genome order.

    The plus strand uses the sense edges as they are. The minus strand, read left to
    right along the genome, walks its sense path backwards: each sense edge ``a -> b``
    becomes ``b- -> a-``, with the flags and scores of the reverse-complemented sequence
    mapped back to genome junctions (``viterbi`` does that mapping).

    Args:
        constants: log-probability per edge kind (``T_*``), float64.
        lncrna: include the lncRNA states (off when the model has no lncRNA feature).

    Returns:
        ``(src, dst, strand, need, score_kind, const)`` arrays sorted by ``dst``:
        ``strand`` says which strand's flags/scores the edge reads (the IG self-loop
        reads none: ``need`` is 0).
    """
    rows = [(IG, IG, 0, 0, SCORE_NONE, 0.0)]
    for strand in (0, 1):
        for a, b, need, score, kind in _SENSE_EDGES:
            if not lncrna and ({"N", "NI", "NI^"} & {a, b}):
                continue
            bits = 0
            for name in need:
                bits |= FLAG[name]
            ia, ib = state_index(a, strand), state_index(b, strand)
            if strand == 1:
                ia, ib = ib, ia
            rows.append((ia, ib, strand, bits, score, float(constants[kind])))
    rows.sort(key=lambda r: (r[1], r[0]))
    cols = list(zip(*rows))
    return (np.array(cols[0], np.int64), np.array(cols[1], np.int64), np.array(cols[2], np.int64),
            np.array(cols[3], np.int64), np.array(cols[4], np.int64), np.array(cols[5], np.float64))
