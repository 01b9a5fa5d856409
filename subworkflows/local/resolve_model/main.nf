//
// Weights for one backbone, converted once per run into a pickle-free copy that holds only
// what predict tasks load (safetensors + json configs; SHA-256 of every file in
// convert.json): local weights (--model_dir) or the published ones (genoseg fetch-model
// into the model cache, storeDir, so later runs skip the download), then
// genoseg convert-model. Emits the converted directory with the checksum of its
// convert.json: an input of every predict task, so -resume recomputes predictions when
// the weights change, even when their path stays the same.
//
include { GENOSEG_FETCH_MODEL   } from '../../../modules/local/fetch_model'
include { GENOSEG_CONVERT_MODEL } from '../../../modules/local/convert_model'
include { resolveModelDir; modelSource; weightsChecksum } from '../utils_genoseg'

workflow RESOLVE_MODEL {

    take:
    backbone      // string
    n_backbones   // integer: how many backbones this run has

    main:
    ch_versions = Channel.empty()
    def meta = [ id: backbone, backbone: backbone ]
    def local_dir = resolveModelDir(params.model_dir, backbone, n_backbones)

    if (local_dir) {
        ch_source = Channel.of([ meta, local_dir ])
    } else {
        GENOSEG_FETCH_MODEL(Channel.of(modelSource(params, backbone)))
        ch_source   = GENOSEG_FETCH_MODEL.out.model.map { source, dir -> [ meta, dir ] }
        ch_versions = ch_versions.mix(GENOSEG_FETCH_MODEL.out.versions)
    }
    GENOSEG_CONVERT_MODEL(ch_source)
    ch_versions = ch_versions.mix(GENOSEG_CONVERT_MODEL.out.versions)

    emit:
    model    = GENOSEG_CONVERT_MODEL.out.model
        .map { m, dir -> [ m, dir, weightsChecksum(dir) ] }
        .first()                                   // value channel: [ meta, converted model dir, sha256 ]
    versions = ch_versions
}
