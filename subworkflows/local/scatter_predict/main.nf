//
// Scatter/gather for one backbone: plan windows -> one predict task per chunk (GPU) ->
// collect all chunks into the backbone's predictions dataset.
//
include { GENOSEG_PLAN    } from '../../../modules/local/plan_windows'
include { GENOSEG_PREDICT } from '../../../modules/local/predict'
include { GENOSEG_COLLECT } from '../../../modules/local/collect'

workflow SCATTER_PREDICT {

    take:
    ch_genome   // value channel: [ meta, fasta, fai ]
    ch_model    // value channel: [ meta (id, backbone), model_dir ]

    main:
    ch_versions = Channel.empty()

    // plan: one task per backbone
    ch_plan_in = ch_model
        .combine(ch_genome)
        .map { meta, model, gmeta, fasta, fai -> [ meta + [ genome: gmeta.id ], fasta, fai, model ] }
    GENOSEG_PLAN(ch_plan_in)
    ch_versions = ch_versions.mix(GENOSEG_PLAN.out.versions)

    // scatter: one task per chunk
    ch_predict_in = GENOSEG_PLAN.out.chunks
        .flatMap { meta, chunks ->
            (chunks instanceof List ? chunks : [ chunks ]).collect { chunk -> [ meta + [ chunk: chunk.baseName ], chunk ] }
        }
        .combine(ch_genome)
        .combine(ch_model)
        .map { meta, chunk, gmeta, fasta, fai, mmeta, model -> [ meta, chunk, fasta, fai, model ] }
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
