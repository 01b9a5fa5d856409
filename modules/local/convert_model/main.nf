// Convert a backbone's published joblib weights (--model_dir) once per run into a
// pickle-free, memory-mapped copy (safetensors) with the SHA-256 of source and result
// files in convert.json. Predict tasks load the copy: no task unpickles, and a 2 GB
// checkpoint loads in about a second. (Fetched weights come converted: fetch-model.)
process GENOSEG_CONVERT_MODEL {
    tag "${meta.backbone}"
    label 'process_low'

    input:
    tuple val(meta), path(model, stageAs: 'source/*')

    output:
    tuple val(meta), path("converted"), emit: model
    path "versions.yml"               , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    genoseg convert-model \\
        --model ${model} \\
        --outdir converted \\
        --backbone ${meta.backbone} \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genoseg: \$(genoseg --version 2>&1 | sed "s/^genoseg //")
    END_VERSIONS
    """

    stub:
    """
    mkdir -p converted/jax_model
    touch converted/jax_model/hyperparams.json
    echo '{}' > converted/convert.json

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genoseg: \$(genoseg --version 2>&1 | sed "s/^genoseg //")
    END_VERSIONS
    """
}
