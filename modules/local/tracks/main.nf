// One bigWig of per-base probabilities per feature: tracks/<feature>.bw.
process GENOSEG_TRACKS {
    tag "${meta.id}"
    label 'process_medium'

    input:
    tuple val(meta), path(predictions), path(fai)

    output:
    tuple val(meta), path("tracks")     , emit: tracks
    tuple val(meta), path("tracks/*.bw"), emit: bigwig
    path "versions.yml"                 , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    genoseg tracks \\
        --predictions ${predictions} \\
        --fai ${fai} \\
        --threads ${task.cpus} \\
        --outdir tracks \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genoseg: \$(genoseg --version 2>&1 | sed "s/^genoseg //")
    END_VERSIONS
    """

    stub:
    """
    mkdir -p tracks
    touch tracks/exon.bw

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genoseg: \$(genoseg --version 2>&1 | sed "s/^genoseg //")
    END_VERSIONS
    """
}
