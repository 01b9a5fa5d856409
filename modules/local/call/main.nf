// Probabilities -> intervals per feature: calls/<feature>.bed.gz (+ .tbi) and calls/calls.gff3.
process GENOSEG_CALL {
    tag "${meta.id}"
    label 'process_medium'

    input:
    tuple val(meta), path(predictions), path(fai)

    output:
    tuple val(meta), path("calls")                , emit: calls
    tuple val(meta), path("calls/calls.gff3")     , emit: gff
    tuple val(meta), path("calls/*.bed.gz")       , emit: bed
    tuple val(meta), path("calls/*.bed.gz.tbi")   , emit: tbi
    path "versions.yml"                           , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    genoseg call \\
        --predictions ${predictions} \\
        --fai ${fai} \\
        --threads ${task.cpus} \\
        --outdir calls \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genoseg: \$(genoseg --version 2>&1 | sed "s/^genoseg //")
    END_VERSIONS
    """

    stub:
    """
    mkdir -p calls
    printf '##gff-version 3\\n' > calls/calls.gff3
    echo | gzip > calls/exon.bed.gz
    touch calls/exon.bed.gz.tbi

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genoseg: \$(genoseg --version 2>&1 | sed "s/^genoseg //")
    END_VERSIONS
    """
}
