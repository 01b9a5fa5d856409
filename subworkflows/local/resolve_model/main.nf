//
// Weights for one backbone: local (--model_dir) or fetched from the hub into the model
// cache (storeDir), so later runs reuse them.
//
include { GENOSEG_FETCH_MODEL } from '../../../modules/local/fetch_model'
include { resolveModelDir; modelSource } from '../utils_genoseg'

workflow RESOLVE_MODEL {

    take:
    backbone      // string
    n_backbones   // integer: how many backbones this run has

    main:
    ch_versions = Channel.empty()
    def local_dir = resolveModelDir(params.model_dir, backbone, n_backbones)

    if (local_dir) {
        ch_model = Channel.value([ [ id: backbone, backbone: backbone ], local_dir ])
    } else {
        GENOSEG_FETCH_MODEL(Channel.of(modelSource(params, backbone)))
        ch_model    = GENOSEG_FETCH_MODEL.out.model
            .map { meta, dir -> [ [ id: meta.backbone, backbone: meta.backbone ], dir ] }
            .first()
        ch_versions = ch_versions.mix(GENOSEG_FETCH_MODEL.out.versions)
    }

    emit:
    model    = ch_model      // value channel: [ meta, model_dir ]
    versions = ch_versions
}
