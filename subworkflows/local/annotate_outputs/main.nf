//
// From a backbone's predictions to its calls (BED/GFF3), tracks (bigWig), gene models
// (when the model predicts exons or introns, unless --genes false), optional evaluation
// against a truth GFF3, and report.html.
//
include { GENOSEG_CALL     } from '../../../modules/local/call'
include { GENOSEG_TRACKS   } from '../../../modules/local/tracks'
include { GENOSEG_GENES    } from '../../../modules/local/genes'
include { decodesGenes     } from '../utils_genoseg'
include { GENOSEG_EVALUATE } from '../../../modules/local/evaluate'
include { GENOSEG_REPORT   } from '../../../modules/local/report'

workflow ANNOTATE_OUTPUTS {

    take:
    ch_predictions   // channel: [ meta, predictions ]
    ch_plan          // channel: [ meta, plan.json ]
    ch_genome        // value channel: [ meta, fasta, fai ]
    ch_truth         // channel: [ meta, truth.gff3, truth_genes.gff3 ] or empty

    main:
    ch_versions = Channel.empty()
    ch_fai = ch_genome.map { meta, fasta, fai -> fai }

    GENOSEG_CALL(ch_predictions.combine(ch_fai))
    GENOSEG_TRACKS(ch_predictions.combine(ch_fai))
    ch_versions = ch_versions.mix(GENOSEG_CALL.out.versions, GENOSEG_TRACKS.out.versions)

    ch_genes_in = ch_predictions
        .filter { meta, predictions -> decodesGenes(params, predictions) }
        .combine(ch_genome.map { meta, fasta, fai -> [ fasta, fai ] })
    GENOSEG_GENES(ch_genes_in)
    ch_versions = ch_versions.mix(GENOSEG_GENES.out.versions)

    // evaluation (simulated genomes): calls against the planted features, and the gene
    // models, when decoded, against the planted genes
    ch_eval_in = GENOSEG_CALL.out.calls
        .join(GENOSEG_GENES.out.genes, remainder: true)
        .combine(ch_truth.map { meta, truth, truth_genes -> [ truth, truth_genes ] })
        .combine(ch_fai)
        .map { meta, calls, genes, truth, truth_genes, fai -> [ meta, calls, genes ?: [], truth, genes ? truth_genes : [], fai ] }
    GENOSEG_EVALUATE(ch_eval_in)
    ch_versions = ch_versions.mix(GENOSEG_EVALUATE.out.versions)

    ch_report_in = ch_plan
        .join(ch_predictions)
        .join(GENOSEG_CALL.out.calls)
        .join(GENOSEG_TRACKS.out.tracks)
        .join(GENOSEG_GENES.out.genes, remainder: true)
        .join(GENOSEG_EVALUATE.out.evaluation, remainder: true)
        .join(GENOSEG_EVALUATE.out.gene_evaluation, remainder: true)
        .combine(ch_truth.map { meta, truth, truth_genes -> [ truth_genes ] }.ifEmpty([ [] ]))
        .map { meta, plan, predictions, calls, tracks, genes, evaluation, gene_evaluation, truth_genes ->
            [ meta, plan, predictions, calls, tracks, genes ?: [], evaluation ?: [], gene_evaluation ?: [], genes ? truth_genes : [] ] }
    GENOSEG_REPORT(ch_report_in)
    ch_versions = ch_versions.mix(GENOSEG_REPORT.out.versions)

    emit:
    calls      = GENOSEG_CALL.out.calls         // channel: [ meta, calls/ ]
    tracks     = GENOSEG_TRACKS.out.tracks      // channel: [ meta, tracks/ ]
    genes      = GENOSEG_GENES.out.genes        // channel: [ meta, genes/ ]
    evaluation = GENOSEG_EVALUATE.out.evaluation  // channel: [ meta, evaluation.tsv ]
    report     = GENOSEG_REPORT.out.report      // channel: [ meta, report.html ]
    versions   = ch_versions
}
