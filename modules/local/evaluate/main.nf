// Score calls against a truth GFF3 (available for simulated genomes: -profile test).
process GENOSEG_EVALUATE {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(calls), path(truth), path(fai)

    output:
    tuple val(meta), path("evaluation.tsv"), emit: evaluation
    path "versions.yml"                    , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    genoseg evaluate \\
        --truth ${truth} \\
        --calls ${calls} \\
        --fai ${fai} \\
        --out evaluation.tsv \\
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
