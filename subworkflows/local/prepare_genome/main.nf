//
// Genome once for all backbones: the demo genome (simulate) or the user's FASTA,
// decompressed and indexed.
//
include { GENOSEG_SIMULATE } from '../../../modules/local/simulate'
include { GENOSEG_PREPARE  } from '../../../modules/local/prepare_genome'

workflow PREPARE_GENOME {

    take:
    meta     // map: [ id ]
    fasta    // file or null
    seed     // integer or null: simulate a demo genome instead

    main:
    ch_versions = Channel.empty()

    if (seed != null) {
        GENOSEG_SIMULATE(Channel.of([ meta, seed ]))
        ch_fasta    = GENOSEG_SIMULATE.out.fasta
        ch_truth    = GENOSEG_SIMULATE.out.truth
        ch_versions = ch_versions.mix(GENOSEG_SIMULATE.out.versions)
    } else {
        ch_fasta = Channel.of([ meta, fasta ])
        ch_truth = Channel.empty()
    }

    GENOSEG_PREPARE(ch_fasta)
    ch_versions = ch_versions.mix(GENOSEG_PREPARE.out.versions)

    emit:
    genome   = GENOSEG_PREPARE.out.genome.first()   // value channel: [ meta, fasta, fai ]
    truth    = ch_truth                            // channel: [ meta, truth.gff3, truth_genes.gff3 ] (simulated genomes only)
    versions = ch_versions                         // channel: versions.yml
}
