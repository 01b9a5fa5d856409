// Demo genome: a deterministic synthetic genome with planted elements, its truth GFF3
// (feature names as types) and its gene models (gene/mRNA/exon/CDS) (used by -profile
// test, or whenever --simulate_seed is given instead of a FASTA).
process GENOSEG_SIMULATE {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), val(seed)

    output:
    tuple val(meta), path("sim/genome.fa"), emit: fasta
    tuple val(meta), path("sim/truth.gff3"), path("sim/truth_genes.gff3"), emit: truth
    path "versions.yml"                    , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    genoseg simulate \\
        --seed ${seed} \\
        --out sim \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genoseg: \$(genoseg --version 2>&1 | sed "s/^genoseg //")
    END_VERSIONS
    """

    stub:
    """
    mkdir -p sim
    printf '>chr1\\nACGT\\n' > sim/genome.fa
    printf '##gff-version 3\\n' > sim/truth.gff3
    printf '##gff-version 3\\n' > sim/truth_genes.gff3

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genoseg: \$(genoseg --version 2>&1 | sed "s/^genoseg //")
    END_VERSIONS
    """
}
