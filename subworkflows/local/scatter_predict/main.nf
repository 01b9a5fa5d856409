//
// Scatter/gather for one backbone: plan windows into chunks sized by model work, each with
// its own staged sequence -> one predict task per chunk (GPU), staging only that chunk's
// sequence and the converted weights -> collect all chunks into the predictions dataset.
//
include { GENOSEG_PLAN    } from '../../../modules/local/plan_windows'
include { GENOSEG_PREDICT } from '../../../modules/local/predict'
include { GENOSEG_COLLECT } from '../../../modules/local/collect'
include { chunkInputs     } from '../utils_genoseg'

workflow SCATTER_PREDICT {

    take:
    ch_genome   // value channel: [ meta, fasta, fai ]
    ch_model    // value channel: [ meta (id, backbone), model_dir, weights sha256 ]

    main:
    ch_versions = Channel.empty()

    // plan: one task per backbone
    ch_plan_in = ch_model
        .combine(ch_genome)
        .map { meta, model, sha, gmeta, fasta, fai -> [ meta + [ genome: gmeta.id ], fasta, fai, model ] }
    GENOSEG_PLAN(ch_plan_in)
    ch_versions = ch_versions.mix(GENOSEG_PLAN.out.versions)

    // scatter: one task per chunk, with chunk_NNNNN.json, its sequence chunk_NNNNN.fa.gz
    // and that sequence's .fai/.gzi
    ch_predict_in = GENOSEG_PLAN.out.chunks
        .flatMap { meta, files -> chunkInputs(meta, files) }
        .combine(ch_model)
        .map { meta, chunk, sequence, index, mmeta, model, sha -> [ meta, chunk, sequence, index, model, sha ] }
    GENOSEG_PREDICT(ch_predict_in)
    ch_versions = ch_versions.mix(GENOSEG_PREDICT.out.versions.first())

    // gather: all chunks of the backbone, in chunk order, with its plan
    ch_collect_in = GENOSEG_PREDICT.out.parquet
        .map { meta, parquet -> [ meta.findAll { k, v -> k != 'chunk' }, parquet ] }
        .groupTuple(sort: true)
        .join(GENOSEG_PLAN.out.plan)
        .map { meta, parquets, plan -> [ meta, plan, parquets ] }
    GENOSEG_COLLECT(ch_collect_in)
    ch_versions = ch_versions.mix(GENOSEG_COLLECT.out.versions)

    emit:
    plan        = GENOSEG_PLAN.out.plan               // channel: [ meta, plan.json ]
    parquet     = GENOSEG_PREDICT.out.parquet         // channel: [ meta, chunk.parquet ] per chunk
    predictions = GENOSEG_COLLECT.out.predictions     // channel: [ meta, <backbone>/predictions ]
    versions    = ch_versions
}
