// Prepare the genome: decompress (gzip/bgzip/plain) to plain FASTA and index it (.fai).
// Contig selection happens in the plan step (genoseg plan --contigs/--contig-regex).
process GENOSEG_PREPARE {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(fasta, stageAs: 'input/*')

    output:
    tuple val(meta), path("${prefix}.fa"), path("${prefix}.fa.fai"), emit: genome
    path "versions.yml"                                             , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    genoseg prepare \\
        --fasta ${fasta} \\
        --out ${prefix}.fa \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genoseg: \$(genoseg --version 2>&1 | sed "s/^genoseg //")
    END_VERSIONS
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    printf '>chr1\\nACGT\\n' > ${prefix}.fa
    printf 'chr1\\t4\\t6\\t4\\t5\\n' > ${prefix}.fa.fai

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genoseg: \$(genoseg --version 2>&1 | sed "s/^genoseg //")
    END_VERSIONS
    """
}
