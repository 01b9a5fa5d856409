//
// Helper functions of the genoseg pipeline: parameter checks with messages a user can
// act on, genome and model resolution. No processes here.
//

def knownBackbones() {
    return ['segment_nt', 'segment_nt_multi_species', 'segment_enformer', 'segment_borzoi']
}

// "--backbone segment_nt,segment_borzoi" -> ['segment_nt', 'segment_borzoi'] (order kept, duplicates dropped)
def parseBackbones(value) {
    def names = (value ?: '').toString().tokenize(',').collect { it.trim() }.findAll { it }
    if (!names) {
        error "No backbone given: use --backbone with one or several of ${knownBackbones().join(', ')} (comma-separated)."
    }
    def unknown = names.findAll { !(it in knownBackbones()) }
    if (unknown) {
        error "Unknown backbone(s) ${unknown.collect { "'${it}'" }.join(', ')} in --backbone. Choose from: ${knownBackbones().join(', ')} (comma-separated for several)."
    }
    return names.unique()
}

// [ meta, fasta-or-null, seed-or-null ] from --fasta, --genome or --simulate_seed
def resolveGenome(params) {
    if (params.simulate_seed != null && (params.fasta || params.genome)) {
        log.warn "--simulate_seed is set: ignoring --fasta/--genome and running on the simulated demo genome."
    }
    if (params.simulate_seed != null) {
        return [ [ id: "simulated_seed${params.simulate_seed}" ], null, params.simulate_seed ]
    }
    def fasta = params.fasta
    def id = 'genome'
    if (params.genome) {
        def genomes = params.genomes ?: [:]
        if (!genomes.containsKey(params.genome)) {
            error "Unknown genome '${params.genome}' given to --genome. Known genomes (conf/genomes.config): ${genomes.keySet().sort().join(', ')}. For any other genome give its FASTA with --fasta."
        }
        id = params.genome
        if (!fasta) {
            fasta = genomes[params.genome].fasta
        } else {
            log.info "--fasta ${fasta} overrides the FASTA of --genome ${params.genome}."
        }
    }
    if (!fasta) {
        error "No genome given: use --fasta <genome.fa[.gz]>, --genome <key> (one of ${(params.genomes ?: [:]).keySet().sort().join(', ')}) or --simulate_seed <int> for the demo genome."
    }
    def f = file(fasta.toString())
    if (f instanceof List || !f.exists()) {
        error "FASTA not found: ${fasta}. Check the path or URL given to --fasta (or the genome's entry in conf/genomes.config); it must be one plain, gzip or bgzip FASTA file."
    }
    if (!params.genome) {
        id = f.name.replaceAll(/(\.gz|\.bgz)$/, '').replaceAll(/\.(fa|fasta|fna)$/, '')
    }
    return [ [ id: id ], f, null ]
}

// Local weights for one backbone: --model_dir is either one model directory (holding
// jax_model/; only with a single backbone) or a folder of <backbone>/jax_model/ directories.
// Returns null when --model_dir is not set (the weights are then fetched from the hub).
def resolveModelDir(model_dir, backbone, n_backbones) {
    if (!model_dir) {
        return null
    }
    def root = file(model_dir.toString())
    if (!root.exists()) {
        error "Model directory not found: ${model_dir} (--model_dir)."
    }
    def per_backbone = root.resolve(backbone)
    if (per_backbone.resolve('jax_model').exists()) {
        return per_backbone
    }
    if (root.resolve('jax_model').exists()) {
        if (n_backbones > 1) {
            error "--model_dir ${model_dir} holds one model but --backbone names ${n_backbones}; give a folder with one <backbone>/jax_model/ per backbone."
        }
        return root
    }
    error "--model_dir ${model_dir} has neither jax_model/ nor ${backbone}/jax_model/ (the published layout: jax_model/hyperparams.json + pytree_ckpt.joblib for SegmentNT, jax_model/params.joblib + state.joblib for Enformer/Borzoi)."
}

// [ id, backbone, repo, revision ] of the published weights (conf/models.config; --model_revision overrides)
def modelSource(params, backbone) {
    def entry = (params.models ?: [:])[backbone] ?: [:]
    def repo = entry.repo ?: "InstaDeepAI/${backbone}"
    def revision = params.model_revision ?: entry.revision ?: 'main'
    return [ id: backbone, backbone: backbone, repo: repo, revision: revision ]
}

// Compute settings that would otherwise fail late (a GPU task queued where it never runs)
// or not at all (a GPU task run on CPUs): checked at start, before any task.
// `profile` is workflow.profile (e.g. 'awsbatch,gpu').
def checkComputeOptions(params, profile) {
    def profiles = (profile ?: '').toString().tokenize(',').collect { it.trim() }
    if ('awsbatch' in profiles) {
        if (!params.awsbatch_queue) {
            error "-profile awsbatch needs --awsbatch_queue <AWS Batch job queue> for the CPU tasks."
        }
        if (params.use_gpu && !params.gpu_queue) {
            error "-profile awsbatch with GPUs (-profile gpu or --use_gpu) needs --gpu_queue <job queue of a compute environment with GPU instances, e.g. g5/g6/p4d/p5 on an ECS GPU AMI>: a GPU task sent to the CPU queue ${params.awsbatch_queue} would never start. Or run without gpu."
        }
    }
    if ('google' in profiles && !params.google_project) {
        error "-profile google needs --google_project <Google Cloud project id>."
    }
}

// Persistent XLA compilation cache shared by the predict tasks of a run (and of later
// runs with the same work directory): --jax_cache_dir, or <workDir>/genoseg_jax_cache when
// the work directory is on a file system; none on an object store (s3://, gs://) unless
// --jax_cache_dir names a shared file system. The same rule is in conf/base.config
// (container mount) and conf/modules.config (--jax-cache-dir).
def jaxCacheDir(params, workDir) {
    if (params.jax_cache_dir) {
        return params.jax_cache_dir.toString()
    }
    return workDir.toUri().scheme == 'file' ? "${workDir}/genoseg_jax_cache".toString() : null
}

// Whether a model directory holds converted weights (convert.json beside jax_model/:
// genoseg convert-model or fetch-model); predict verifies every file against it at load.
def isConverted(model_dir) {
    return model_dir.resolve('convert.json').exists()
}

// SHA-256 of a converted model directory's convert.json, which lists the SHA-256 of every
// weight file: a predict task input, so that its cache key follows the weights.
def weightsChecksum(model_dir) {
    def record = model_dir.resolve('convert.json')
    if (!record.exists()) {
        error "${model_dir} has no convert.json: the weights were not converted (genoseg convert-model / fetch-model without --no-convert)."
    }
    return record.text.digest('SHA-256')
}

// Whether the gene-model step runs for a backbone's predictions: not with --genes false,
// otherwise when the model predicts exons or introns (as `genoseg annotate` decides),
// read from the dataset's index (_genoseg.json features).
def decodesGenes(params, predictions) {
    if (!params.genes) {
        return false
    }
    def index = predictions.resolve('_genoseg.json')
    def features = index.exists() ? (new groovy.json.JsonSlurper().parseText(index.text).features ?: []) : []
    return ('exon' in features) || ('intron' in features)
}

// The plan's chunk files -> one predict input per chunk, in chunk order:
// [ meta + [chunk: 'chunk_NNNNN'], chunk_NNNNN.json, chunk_NNNNN.fa.gz, [ its .fai/.gzi ] ]
def chunkInputs(meta, files) {
    def byChunk = (files instanceof List ? files : [ files ]).groupBy { f -> f.name.tokenize('.')[0] }
    return byChunk.keySet().sort().collect { String chunk ->
        def named = byChunk[chunk].collectEntries { f -> [ (f.name): f ] }
        def json = named["${chunk}.json".toString()]
        def sequence = named["${chunk}.fa.gz".toString()]
        if (json == null || sequence == null) {
            error "Plan output incomplete for ${chunk}: expected ${chunk}.json and ${chunk}.fa.gz (genoseg plan --stage-sequences), found ${named.keySet().sort().join(', ')}."
        }
        def index = [ "${chunk}.fa.gz.fai".toString(), "${chunk}.fa.gz.gzi".toString() ].findResults { n -> named[n] }
        [ meta + [ chunk: chunk ], json, sequence, index ]
    }
}
