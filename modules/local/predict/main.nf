// Predict one chunk of windows on a GPU (CPU when params.use_gpu is false).
// The GPU request, container flags and retry rules come with the label process_gpu
// (conf/base.config). When the accelerator runs out of memory, genoseg predict exits with
// status 75 and the task is retried with half the batch (ext.batch_size, conf/modules.config).
process GENOSEG_PREDICT {
    tag "${meta.backbone}:${meta.chunk}"
    label 'process_gpu'

    input:
    // the chunk, its own sequence (+ .fai/.gzi), the converted weights and their checksum
    // (an input only for the cache key: -resume recomputes when the weights change)
    tuple val(meta), path(chunk), path(sequence), path(sequence_index), path(model), val(weights_sha256)

    output:
    tuple val(meta), path("${prefix}.parquet"), emit: parquet
    path "versions.yml"                       , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args       = task.ext.args ?: ''
    def batch_size = task.ext.batch_size ?: 4
    prefix = task.ext.prefix ?: "${meta.chunk}"
    """
    genoseg predict \\
        --sequence ${sequence} \\
        --model ${model} \\
        --backbone ${meta.backbone} \\
        --chunk ${chunk} \\
        --batch-size ${batch_size} \\
        --out ${prefix}.parquet \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genoseg: \$(genoseg --version 2>&1 | sed "s/^genoseg //")
    END_VERSIONS
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.chunk}"
    """
    touch ${prefix}.parquet

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genoseg: \$(genoseg --version 2>&1 | sed "s/^genoseg //")
    END_VERSIONS
    """
}
