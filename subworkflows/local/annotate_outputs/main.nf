//
// From a backbone's predictions to its calls (BED/GFF3), tracks (bigWig), optional
// evaluation against a truth GFF3, and report.html.
//
include { GENOSEG_CALL     } from '../../../modules/local/call'
include { GENOSEG_TRACKS   } from '../../../modules/local/tracks'
include { GENOSEG_EVALUATE } from '../../../modules/local/evaluate'
include { GENOSEG_REPORT   } from '../../../modules/local/report'

workflow ANNOTATE_OUTPUTS {

    take:
    ch_predictions   // channel: [ meta, predictions ]
    ch_plan          // channel: [ meta, plan.json ]
    ch_genome        // value channel: [ meta, fasta, fai ]
    ch_truth         // channel: [ meta, truth.gff3 ] or empty

    main:
    ch_versions = Channel.empty()
    ch_fai = ch_genome.map { meta, fasta, fai -> fai }

    GENOSEG_CALL(ch_predictions.combine(ch_fai))
    GENOSEG_TRACKS(ch_predictions.combine(ch_fai))
    ch_versions = ch_versions.mix(GENOSEG_CALL.out.versions, GENOSEG_TRACKS.out.versions)

    ch_eval_in = GENOSEG_CALL.out.calls
        .combine(ch_truth.map { meta, truth -> truth })
        .combine(ch_fai)
    GENOSEG_EVALUATE(ch_eval_in)
    ch_versions = ch_versions.mix(GENOSEG_EVALUATE.out.versions)

    ch_report_in = ch_plan
        .join(ch_predictions)
        .join(GENOSEG_CALL.out.calls)
        .join(GENOSEG_TRACKS.out.tracks)
        .join(GENOSEG_EVALUATE.out.evaluation, remainder: true)
        .map { meta, plan, predictions, calls, tracks, evaluation -> [ meta, plan, predictions, calls, tracks, evaluation ?: [] ] }
    GENOSEG_REPORT(ch_report_in)
    ch_versions = ch_versions.mix(GENOSEG_REPORT.out.versions)

    emit:
    calls      = GENOSEG_CALL.out.calls         // channel: [ meta, calls/ ]
    tracks     = GENOSEG_TRACKS.out.tracks      // channel: [ meta, tracks/ ]
    evaluation = GENOSEG_EVALUATE.out.evaluation
    report     = GENOSEG_REPORT.out.report      // channel: [ meta, report.html ]
    versions   = ch_versions
}
