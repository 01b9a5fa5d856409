"""Gene model outputs: GFF3 (Sequence Ontology types), protein FASTA, BED12.

Coordinates: :class:`~genoseg.genes.decoder.Transcript` holds 0-based half-open
intervals; GFF3 is 1-based closed, BED 0-based half-open. IDs: gene ``g000001``,
transcript ``g000001.t1``, its exons ``g000001.t1.exon1`` (numbered in transcription
order), its CDS ``g000001.t1.cds`` (one ID over all CDS lines, as GFF3 allows for a
discontinuous feature) and UTRs ``g000001.t1.five_prime_UTR`` / ``.three_prime_UTR``.
The CDS includes the stop codon; proteins do not.
"""

from __future__ import annotations

from ..calls import gff_escape, gff_escape_seqid
from .decoder import Transcript

SO_TRANSCRIPT = {True: "mRNA", False: "lnc_RNA"}  # lnc_RNA: the SO name of a lncRNA transcript
BIOTYPE = {True: "protein_coding", False: "lncRNA"}


def gene_id(n: int) -> str:
    return f"g{n:06d}"


def gff3_header(regions) -> str:
    """``##gff-version 3`` and ``##sequence-region`` lines for ``[(contig, length)]``."""
    return "##gff-version 3\n" + "".join(f"##sequence-region {gff_escape_seqid(c)} 1 {n}\n" for c, n in regions)


def gff3_gene(tx: Transcript, gid: str, source: str) -> str:
    """The GFF3 lines of one gene with its one transcript, ending with ``###``."""
    seqid, src = gff_escape_seqid(tx.chrom), gff_escape(source)
    tid = f"{gid}.t1"

    def line(ftype, a, b, score, phase, attrs):
        return f"{seqid}\t{src}\t{ftype}\t{a + 1}\t{b}\t{score}\t{tx.strand}\t{phase}\t{attrs}\n"

    out = [line("gene", tx.start, tx.end, f"{tx.score:.3f}", ".", f"ID={gid};gene_biotype={BIOTYPE[tx.coding]}"),
           line(SO_TRANSCRIPT[tx.coding], tx.start, tx.end, f"{tx.score:.3f}", ".", f"ID={tid};Parent={gid}")]
    children = []
    n = len(tx.exons)
    for k, ((a, b), sc) in enumerate(zip(tx.exons.tolist(), tx.exon_scores.tolist())):
        number = k + 1 if tx.strand == "+" else n - k
        children.append((a, 0, line("exon", a, b, f"{sc:.3f}", ".", f"ID={tid}.exon{number};Parent={tid}")))
    for (a, b), phase in zip(tx.cds.tolist(), tx.cds_phase):
        children.append((a, 1, line("CDS", a, b, ".", phase, f"ID={tid}.cds;Parent={tid}")))
    five, three = (tx.utr5, tx.utr3)
    for ftype, parts in (("five_prime_UTR", five), ("three_prime_UTR", three)):
        for a, b in parts.tolist():
            children.append((a, 1, line(ftype, a, b, ".", ".", f"ID={tid}.{ftype};Parent={tid}")))
    out += [c[2] for c in sorted(children, key=lambda c: (c[0], c[1]))]
    out.append("###\n")
    return "".join(out)


def fasta_protein(tx: Transcript, gid: str, width: int = 60) -> str:
    """Protein FASTA record of a coding transcript (``>g000001.t1 gene=g000001 chr:s-e(+)``)."""
    head = f">{gid}.t1 gene={gid} {tx.chrom}:{tx.start + 1}-{tx.end}({tx.strand})\n"
    p = tx.protein
    return head + "".join(p[i:i + width] + "\n" for i in range(0, len(p), width))


def bed12(tx: Transcript, gid: str) -> str:
    """BED12 line of a transcript (thick part = CDS incl. stop codon; lncRNA: none)."""
    sizes = (tx.exons[:, 1] - tx.exons[:, 0]).tolist()
    starts = (tx.exons[:, 0] - tx.start).tolist()
    thick = (int(tx.cds[:, 0].min()), int(tx.cds[:, 1].max())) if tx.coding else (tx.start, tx.start)
    score = min(1000, max(0, round(tx.score * 1000)))
    return (f"{tx.chrom}\t{tx.start}\t{tx.end}\t{gid}.t1\t{score}\t{tx.strand}\t{thick[0]}\t{thick[1]}\t0\t"
            f"{len(sizes)}\t{','.join(map(str, sizes))},\t{','.join(map(str, starts))},\n")
