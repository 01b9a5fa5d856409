// Gene models from a backbone's per-base probabilities: genes/genes.gff3 (gene -> mRNA |
// lnc_RNA -> exon / CDS / UTRs), genes/proteins.faa, genes/transcripts.bed (BED12) and
// genes/summary.json. Needs the whole genome FASTA (splice-site and ORF rules).
process GENOSEG_GENES {
    tag "${meta.id}"
    label 'process_medium'

    input:
    tuple val(meta), path(predictions), path(fasta), path(fai)

    output:
    tuple val(meta), path("genes")                , emit: genes
    tuple val(meta), path("genes/genes.gff3")     , emit: gff
    tuple val(meta), path("genes/proteins.faa")   , emit: proteins
    tuple val(meta), path("genes/transcripts.bed"), emit: bed
    path "versions.yml"                           , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    genoseg genes \\
        --predictions ${predictions} \\
        --fasta ${fasta} \\
        --threads ${task.cpus} \\
        --outdir genes \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genoseg: \$(genoseg --version 2>&1 | sed "s/^genoseg //")
    END_VERSIONS
    """

    stub:
    """
    mkdir -p genes
    printf '##gff-version 3\\n' > genes/genes.gff3
    touch genes/proteins.faa genes/transcripts.bed

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genoseg: \$(genoseg --version 2>&1 | sed "s/^genoseg //")
    END_VERSIONS
    """
}
