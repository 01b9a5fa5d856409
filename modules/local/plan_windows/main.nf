// Lay the genome out in windows of the backbone's input length and group them in chunks
// of about equal model work (one GPU task per chunk), each with its own sequence
// (chunks/chunk_NNNNN.fa.gz, bgzipped + .fai/.gzi) so that a predict task stages only
// what it reads. Task sizing and contig selection flags come in through task.ext.args.
process GENOSEG_PLAN {
    tag "${meta.id}"
    label 'process_low'

    input:
    tuple val(meta), path(fasta), path(fai), path(model)

    output:
    tuple val(meta), path("plan/plan.json")    , emit: plan
    tuple val(meta), path("plan/chunks/chunk_*"), emit: chunks   // .json + .fa.gz(.fai/.gzi) per chunk
    path "versions.yml"                          , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    genoseg plan \\
        --fasta ${fasta} \\
        --model ${model} \\
        --outdir plan \\
        --stage-sequences \\
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
    for c in chunk_00000 chunk_00001; do
        echo '{}' > plan/chunks/\$c.json
        echo | gzip > plan/chunks/\$c.fa.gz
        touch plan/chunks/\$c.fa.gz.fai plan/chunks/\$c.fa.gz.gzi
    done

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genoseg: \$(genoseg --version 2>&1 | sed "s/^genoseg //")
    END_VERSIONS
    """
}
