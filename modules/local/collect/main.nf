// Gather the per-chunk Parquet files of one backbone into the predictions dataset
// <backbone>/predictions/ (part-NNNNN.parquet, one per chunk, unchanged, + _genoseg.json index).
process GENOSEG_COLLECT {
    tag "${meta.id}"
    label 'process_medium'

    input:
    tuple val(meta), path(plan), path(parquets, stageAs: 'chunks/*')

    output:
    tuple val(meta), path("${meta.backbone}/predictions"), emit: predictions
    path "versions.yml"                                  , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    genoseg collect \\
        --plan ${plan} \\
        --chunks ${parquets} \\
        --outdir . \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genoseg: \$(genoseg --version 2>&1 | sed "s/^genoseg //")
    END_VERSIONS
    """

    stub:
    """
    mkdir -p ${meta.backbone}/predictions
    touch ${meta.backbone}/predictions/part-00000.parquet
    echo '{}' > ${meta.backbone}/predictions/_genoseg.json

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genoseg: \$(genoseg --version 2>&1 | sed "s/^genoseg //")
    END_VERSIONS
    """
}
