// Gather the per-chunk Parquet files of one backbone into the predictions dataset
// <backbone>/predictions/ (Hive-partitioned by chrom), blending overlapping windows.
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
    mkdir -p ${meta.backbone}/predictions/chrom=chr1
    touch ${meta.backbone}/predictions/chrom=chr1/part-0.parquet

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genoseg: \$(genoseg --version 2>&1 | sed "s/^genoseg //")
    END_VERSIONS
    """
}
