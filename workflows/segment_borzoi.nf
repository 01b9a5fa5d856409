/*
    Workflow for SegmentBorzoi: one-hot input, only the central 196,608 bp of each 524,288 bp window is predicted (the plan overlaps windows accordingly).
    genome -> model (converted once) -> plan -> predict per chunk (GPU) -> collect ->
    call / tracks / genes -> report,
    published under OUTDIR/<backbone>/ (see conf/modules.config).
*/
include { RESOLVE_MODEL    } from '../subworkflows/local/resolve_model'
include { SCATTER_PREDICT  } from '../subworkflows/local/scatter_predict'
include { ANNOTATE_OUTPUTS } from '../subworkflows/local/annotate_outputs'

workflow SEGMENT_BORZOI {

    take:
    ch_genome     // value channel: [ meta, fasta, fai ]
    ch_truth      // channel: [ meta, truth.gff3, truth_genes.gff3 ] or empty
    backbone      // string: the backbone this run uses
    n_backbones   // integer: number of backbones in this pipeline run

    main:
    RESOLVE_MODEL(backbone, n_backbones)
    SCATTER_PREDICT(ch_genome, RESOLVE_MODEL.out.model)
    ANNOTATE_OUTPUTS(SCATTER_PREDICT.out.predictions, SCATTER_PREDICT.out.plan, ch_genome, ch_truth)

    ch_versions = RESOLVE_MODEL.out.versions
        .mix(SCATTER_PREDICT.out.versions, ANNOTATE_OUTPUTS.out.versions)

    emit:
    predictions = SCATTER_PREDICT.out.predictions   // channel: [ meta, predictions/ ]
    calls       = ANNOTATE_OUTPUTS.out.calls        // channel: [ meta, calls/ ]
    tracks      = ANNOTATE_OUTPUTS.out.tracks       // channel: [ meta, tracks/ ]
    genes       = ANNOTATE_OUTPUTS.out.genes        // channel: [ meta, genes/ ]
    report      = ANNOTATE_OUTPUTS.out.report       // channel: [ meta, report.html ]
    versions    = ch_versions                       // channel: versions.yml
}
