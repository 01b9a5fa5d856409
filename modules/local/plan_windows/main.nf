// Lay the genome out in windows of the backbone's input length and group them in chunks
// (one GPU task per chunk). Contig selection flags come in through task.ext.args.
process GENOSEG_PLAN {
    tag "${meta.id}"
    label 'process_low'

    input:
    tuple val(meta), path(fasta), path(fai), path(model)

    output:
    tuple val(meta), path("plan/plan.json")        , emit: plan
    tuple val(meta), path("plan/chunks/chunk_*.json"), emit: chunks
    path "versions.yml"                              , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    genoseg plan \\
        --fasta ${fasta} \\
        --model ${model} \\
        --outdir plan \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genoseg: \$(genoseg --version 2>&1 | sed "s/^genoseg //")
    END_VERSIONS
    """

    stub:
    """
    mkdir -p plan/chunks
    echo '{}' > plan/plan.json
    echo '{}' > plan/chunks/chunk_00000.json
    echo '{}' > plan/chunks/chunk_00001.json

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genoseg: \$(genoseg --version 2>&1 | sed "s/^genoseg //")
    END_VERSIONS
    """
}
