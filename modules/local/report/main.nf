// One self-contained HTML report per backbone. The backbone's outputs are staged as
// run/{predictions,calls,tracks,genes}, the layout `genoseg report --outdir` reads.
process GENOSEG_REPORT {
    tag "${meta.id}"
    label 'process_low'

    input:
    tuple val(meta), path(plan), path(predictions, stageAs: 'run/predictions'), path(calls, stageAs: 'run/calls'), path(tracks, stageAs: 'run/tracks'), path(genes, stageAs: 'run/genes'), path(evaluation), path(gene_evaluation), path(truth_genes)

    output:
    tuple val(meta), path("report.html"), emit: report
    path "versions.yml"                 , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args     = task.ext.args ?: ''
    def eval_arg = [
        evaluation      ? "--evaluation ${evaluation}"           : '',
        gene_evaluation ? "--gene-evaluation ${gene_evaluation}" : '',
        truth_genes     ? "--truth-genes ${truth_genes}"         : ''
    ].join(' ')
    """
    genoseg report \\
        --outdir run \\
        --plan ${plan} \\
        --out report.html \\
        ${eval_arg} \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genoseg: \$(genoseg --version 2>&1 | sed "s/^genoseg //")
    END_VERSIONS
    """

    stub:
    """
    echo '<html></html>' > report.html

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genoseg: \$(genoseg --version 2>&1 | sed "s/^genoseg //")
    END_VERSIONS
    """
}
