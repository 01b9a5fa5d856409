#!/usr/bin/env nextflow
/*
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
    genoseg: single-base genome annotation with SegmentNT, SegmentEnformer, SegmentBorzoi
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
    nextflow run . -profile docker,gpu --genome hg38 --backbone segment_nt,segment_borzoi --outdir results
    Every backbone runs as its own workflow and writes OUTDIR/<backbone>/; see docs/pipeline.md.
----------------------------------------------------------------------------------------
*/

include { validateParameters; paramsSummaryLog } from 'plugin/nf-schema'

include { PREPARE_GENOME                       } from './subworkflows/local/prepare_genome'
include { SEGMENT_NT                           } from './workflows/segment_nt'
include { SEGMENT_NT as SEGMENT_NT_MULTI_SPECIES } from './workflows/segment_nt'
include { SEGMENT_ENFORMER                     } from './workflows/segment_enformer'
include { SEGMENT_BORZOI                       } from './workflows/segment_borzoi'
include { parseBackbones; resolveGenome; checkComputeOptions; jaxCacheDir } from './subworkflows/local/utils_genoseg'

workflow {

    main:
    //
    // Parameters: schema validation (nf-schema), then the checks the schema cannot express
    //
    if (params.validate_params) {
        validateParameters()
    }
    log.info paramsSummaryLog(workflow)

    def backbones = parseBackbones(params.backbone)
    def genome    = resolveGenome(params)   // [ meta, fasta or null, seed or null ]
    def n         = backbones.size()
    checkComputeOptions(params, workflow.profile)

    // the XLA compilation cache must exist before a container mounts it
    def jax_cache = jaxCacheDir(params, workflow.workDir)
    if (jax_cache) {
        file(jax_cache).mkdirs()
    }

    //
    // Genome: once for all backbones
    //
    PREPARE_GENOME(genome[0], genome[1], genome[2])
    ch_genome   = PREPARE_GENOME.out.genome
    ch_truth    = PREPARE_GENOME.out.truth
    ch_versions = PREPARE_GENOME.out.versions

    //
    // One workflow per backbone, each publishing OUTDIR/<backbone>/
    //
    if ('segment_nt' in backbones) {
        SEGMENT_NT(ch_genome, ch_truth, 'segment_nt', n)
        ch_versions = ch_versions.mix(SEGMENT_NT.out.versions)
    }
    if ('segment_nt_multi_species' in backbones) {
        SEGMENT_NT_MULTI_SPECIES(ch_genome, ch_truth, 'segment_nt_multi_species', n)
        ch_versions = ch_versions.mix(SEGMENT_NT_MULTI_SPECIES.out.versions)
    }
    if ('segment_enformer' in backbones) {
        SEGMENT_ENFORMER(ch_genome, ch_truth, 'segment_enformer', n)
        ch_versions = ch_versions.mix(SEGMENT_ENFORMER.out.versions)
    }
    if ('segment_borzoi' in backbones) {
        SEGMENT_BORZOI(ch_genome, ch_truth, 'segment_borzoi', n)
        ch_versions = ch_versions.mix(SEGMENT_BORZOI.out.versions)
    }

    //
    // Software versions of every process, one file
    //
    ch_versions
        .unique()
        .collectFile(name: 'genoseg_software_versions.yml', storeDir: "${params.outdir}/pipeline_info", sort: true, newLine: true)
}

workflow.onComplete {
    if (workflow.success) {
        log.info "genoseg: done. Results in ${params.outdir}/<backbone>/ (predictions, calls, tracks, report.html); run reports in ${params.outdir}/pipeline_info/."
    } else {
        log.error "genoseg: failed. See ${params.outdir}/pipeline_info/ and .nextflow.log; rerun with -resume to keep finished chunks."
        if ((workflow.errorReport ?: '').contains('GENOSEG_FETCH_MODEL')) {
            log.error "genoseg: the weights could not be downloaded. Compute nodes without internet access: download them once where there is (genoseg fetch-model --backbone <backbone> --revision <commit> --outdir models/<backbone>) and pass --model_dir models (see docs/pipeline.md, Model weights)."
        }
    }
}
