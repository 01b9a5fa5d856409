"""``genoseg genes``: per-base probabilities -> gene models (GFF3, proteins, BED12).

Decodes each gene-bearing region with an explicit state model per strand (intergenic,
5' UTR, CDS exon in frame 0/1/2, intron with phase, 3' UTR, lncRNA exon/intron) by
exact Viterbi: introns start with GT/GC and end with AG (reverse complement on the minus
strand), a CDS starts with ATG, ends with a stop codon, has no in-frame stop and a
length that is a multiple of 3. Writes OUTDIR/genes.gff3 (gene -> mRNA|lnc_RNA -> exon /
CDS / five_prime_UTR / three_prime_UTR), OUTDIR/proteins.faa, OUTDIR/transcripts.bed
(BED12) and OUTDIR/summary.json.
"""

from __future__ import annotations

import argparse

from ..parallel import add_threads_option


def add_decoder_options(p) -> None:
    """Decoder settings (shared with ``annotate``); defaults from ``DecoderParams``."""
    from ..genes import DecoderParams

    d = DecoderParams()
    g = p.add_argument_group("gene decoder")
    g.add_argument("--splice-prior-weight", type=float, default=d.splice_prior_weight,
                   help="weight of the splice-site consensus sequence score (0 = model evidence and GT/AG "
                        f"rules only; default {d.splice_prior_weight})")
    g.add_argument("--min-cds-length", type=int, default=d.min_cds_length,
                   help=f"drop coding transcripts with a shorter CDS, bp incl. stop codon (default {d.min_cds_length})")
    g.add_argument("--region-threshold", type=float, default=d.region_threshold,
                   help="gene/lncRNA probability that makes a base gene-bearing (default "
                        f"{d.region_threshold})")


def decoder_params(args):
    from ..genes import DecoderParams

    return DecoderParams(splice_prior_weight=args.splice_prior_weight, min_cds_length=args.min_cds_length,
                         region_threshold=args.region_threshold)


def register(sub) -> None:
    p = sub.add_parser("genes", help="decode gene models (GFF3, protein FASTA, BED12) from predictions",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--predictions", required=True, help="prediction dataset: OUTDIR/<backbone>/predictions")
    p.add_argument("--fasta", required=True, help="the genome FASTA the predictions were made from")
    p.add_argument("--outdir", required=True, help="output directory (genes.gff3, proteins.faa, transcripts.bed)")
    p.add_argument("--contigs", default=None, help="comma-separated contigs to decode (default: all predicted)")
    p.add_argument("--contig-regex", default=None, help="decode contigs whose name matches this regular expression")
    add_threads_option(p)
    add_decoder_options(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing --outdir")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..genes import predict_genes
    from ..parallel import check_threads
    from .plan import contig_list

    predict_genes(args.predictions, args.fasta, args.outdir, decoder_params(args), contigs=contig_list(args.contigs),
                  contig_regex=args.contig_regex, threads=check_threads(args.threads), overwrite=args.overwrite)
    return 0
