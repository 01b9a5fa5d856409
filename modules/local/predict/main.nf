// Predict one chunk of windows on a GPU (CPU when params.use_gpu is false).
// When the accelerator runs out of memory, genoseg predict exits with status 75; the
// process label process_gpu retries on that status and every attempt halves the batch.
process GENOSEG_PREDICT {
    tag "${meta.backbone}:${meta.chunk}"
    label 'process_gpu'

    // the container engine's GPU flag (also set for every process_gpu task in conf/base.config)
    containerOptions "${ !params.use_gpu ? '' : workflow.containerEngine == 'docker' ? '--gpus all' : workflow.containerEngine in ['singularity', 'apptainer'] ? '--nv' : '' }"

    input:
    tuple val(meta), path(chunk), path(fasta), path(fai), path(model)

    output:
    tuple val(meta), path("${prefix}.parquet"), emit: parquet
    path "versions.yml"                       , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args       = task.ext.args ?: ''
    def base_batch = (task.ext.batch_size ?: 8) as int
    def batch_size = Math.max(1, base_batch.intdiv(1 << (task.attempt - 1)))
    prefix = task.ext.prefix ?: "${meta.chunk}"
    """
    genoseg predict \\
        --fasta ${fasta} \\
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
