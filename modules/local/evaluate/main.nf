// Score calls against a truth GFF3, and the gene models (when decoded) against the truth
// gene models: gffcompare-style base/exon/intron/intron-chain/gene sensitivity and
// precision (available for simulated genomes: -profile test).
process GENOSEG_EVALUATE {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(calls), path(genes), path(truth), path(truth_genes), path(fai)

    output:
    tuple val(meta), path("evaluation.tsv")                       , emit: evaluation
    tuple val(meta), path("evaluation_genes.tsv"), optional: true , emit: gene_evaluation
    path "versions.yml"                                           , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args      = task.ext.args ?: ''
    def genes_arg = genes ? "--genes ${genes}/genes.gff3 --truth-genes ${truth_genes} --out-genes evaluation_genes.tsv" : ''
    """
    genoseg evaluate \\
        --truth ${truth} \\
        --calls ${calls} \\
        --fai ${fai} \\
        --out evaluation.tsv \\
        ${genes_arg} \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genoseg: \$(genoseg --version 2>&1 | sed "s/^genoseg //")
    END_VERSIONS
    """

    stub:
    """
    printf 'feature\\tprecision\\trecall\\tf1\\n' > evaluation.tsv

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genoseg: \$(genoseg --version 2>&1 | sed "s/^genoseg //")
    END_VERSIONS
    """
}
