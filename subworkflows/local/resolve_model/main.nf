//
// Weights for one backbone, in a pickle-free form (safetensors + json configs, SHA-256 of
// every file in convert.json), converted ONCE per run at most:
//   - published weights: GENOSEG_FETCH_MODEL downloads jax_model/ and converts it into
//     the model cache (storeDir: later runs skip the task, and reuse the converted
//     weights); the directory is used as it is, never converted again;
//   - --model_dir already converted (convert.json, e.g. pre-staged with fetch-model):
//     used as it is;
//   - --model_dir with only the published joblib files: genoseg convert-model, once.
// Emits the directory with the SHA-256 of its convert.json (which lists the SHA-256 of
// every weight file): an input of every predict task, so -resume recomputes predictions
// when the weights change, even when their path stays the same.
//
include { GENOSEG_FETCH_MODEL   } from '../../../modules/local/fetch_model'
include { GENOSEG_CONVERT_MODEL } from '../../../modules/local/convert_model'
include { resolveModelDir; modelSource; isConverted; weightsChecksum } from '../utils_genoseg'

workflow RESOLVE_MODEL {

    take:
    backbone      // string
    n_backbones   // integer: how many backbones this run has

    main:
    ch_versions = Channel.empty()
    def meta = [ id: backbone, backbone: backbone ]
    def local_dir = resolveModelDir(params.model_dir, backbone, n_backbones)

    if (!local_dir) {
        GENOSEG_FETCH_MODEL(Channel.of(modelSource(params, backbone)))
        ch_model    = GENOSEG_FETCH_MODEL.out.model.map { source, dir -> [ meta, dir ] }
        ch_versions = ch_versions.mix(GENOSEG_FETCH_MODEL.out.versions)
    } else if (isConverted(local_dir)) {
        ch_model    = Channel.of([ meta, local_dir ])
    } else {
        GENOSEG_CONVERT_MODEL(Channel.of([ meta, local_dir ]))
        ch_model    = GENOSEG_CONVERT_MODEL.out.model
        ch_versions = ch_versions.mix(GENOSEG_CONVERT_MODEL.out.versions)
    }

    emit:
    model    = ch_model
        .map { m, dir -> [ m, dir, weightsChecksum(dir) ] }
        .first()                                   // value channel: [ meta, converted model dir, sha256 ]
    versions = ch_versions
}
