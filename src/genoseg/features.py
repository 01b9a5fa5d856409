"""Feature names of the published segmentation models (no heavy imports)."""

#: The 14 features of the published segmentation models (SegmentNT's hyperparams.json
#: order; the Enformer/Borzoi checkpoints store no list and use the same one).
PUBLISHED_FEATURES = (
    "protein_coding_gene",
    "lncRNA",
    "exon",
    "intron",
    "splice_donor",
    "splice_acceptor",
    "5UTR",
    "3UTR",
    "CTCF-bound",
    "polyA_signal",
    "enhancer_Tissue_specific",
    "enhancer_Tissue_invariant",
    "promoter_Tissue_specific",
    "promoter_Tissue_invariant",
)
