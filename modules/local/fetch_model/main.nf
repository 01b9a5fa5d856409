// Download the published weights (jax_model/ of InstaDeepAI/<backbone>) at a pinned
// revision and convert them, once: the download (download/, hard links into the
// Hugging Face cache; fetch.json records the commit the revision resolved to) becomes
// <backbone>/<revision>/ with only what predict tasks load: safetensors files, json
// configs, fetch.json and convert.json (SHA-256 of source and result). storeDir (set in
// conf/modules.config to params.model_cache) makes this a cache: when
// <cache>/<backbone>/<revision>/ already exists the task is skipped, and the converted
// weights are reused as they are.
process GENOSEG_FETCH_MODEL {
    tag "${meta.backbone}@${meta.revision}"
    label 'process_single'
    label 'error_retry'

    input:
    val(meta)   // [ id, backbone, repo, revision ]

    output:
    tuple val(meta), path("${meta.backbone}/${meta.revision}"), emit: model
    path "versions.yml"                                     , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    genoseg fetch-model \\
        --backbone ${meta.backbone} \\
        --repo ${meta.repo} \\
        --revision ${meta.revision} \\
        --outdir download \\
        --no-convert \\
        ${args}

    genoseg convert-model \\
        --model download \\
        --outdir ${meta.backbone}/${meta.revision} \\
        --backbone ${meta.backbone}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genoseg: \$(genoseg --version 2>&1 | sed "s/^genoseg //")
    END_VERSIONS
    """

    stub:
    """
    mkdir -p ${meta.backbone}/${meta.revision}/jax_model
    touch ${meta.backbone}/${meta.revision}/jax_model/hyperparams.json
    echo '{}' > ${meta.backbone}/${meta.revision}/convert.json

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genoseg: \$(genoseg --version 2>&1 | sed "s/^genoseg //")
    END_VERSIONS
    """
}
