#!/usr/bin/env python
"""Micro-benchmark of ``model.predict``: bases per second by window length and batch size.

CPU: SegmentNT at two random-weight sizes (the golden "tiny" shape and a "small" one),
plus the tiny golden SegmentEnformer / SegmentBorzoi checkpoints. On a GPU the same run
also compares the two attention paths (einsum vs fused ``dot_product_attention``, which
uses cuDNN for bfloat16) and float32 vs bfloat16.

Compile time is measured separately (first call); throughput is the median of
``--repeats`` timed calls. Usage::

    python benchmarks/bench_predict.py [--quick] [--repeats 5] [--json out.json]
    python benchmarks/bench_predict.py --compare-authors [--repeats 7] [--size published --length 30000]
    python benchmarks/bench_predict.py --engine
    python benchmarks/bench_predict.py --host-rate [--genome-mb 20]

``--compare-authors`` times genoseg's SegmentNT against the authors' jitted forward
(package ``nucleotide_transformer``, github instadeepai/nucleotide-transformer; not a
dependency: ``git clone`` it and ``pip install --no-deps ./nucleotide-transformer``)
on the same random checkpoint (4 layers, width 256) and the same 8 windows of 6,144 bp,
float32, in one process: A/B calls interleaved, medians, ratio = authors' time /
genoseg's time (> 1: genoseg faster), and the largest difference of the probabilities;
``--size published`` uses the published size (29 layers, width 1024), and on a GPU
genoseg's bfloat16 + fused-attention path is timed beside the two.

``--engine`` runs ``predict_chunk`` over a synthetic genome (a long contig with N
gaps and short runs, plus many small scaffolds) with the tiny SegmentNT and with the
fake fast model of ``tests/fakes.py`` (host-side worst case), and prints per chunk the
padded-copy fraction (and what per-run batching would have padded), the device-idle
fraction, the per-batch breakdown (host read + tokenise, transfer, device, merge,
write) and the merge rate.

``--host-rate`` measures how fast the host side of ``predict_chunk`` (read, tokenise,
merge, quantise, Parquet encode on the writer thread) can go at each backbone's
published window and batch, with a model that computes nothing (``ReplayModel`` of
``tests/fakes.py``: noise output, the costliest to encode; the demo model's output
tiled along the genome, "realistic", each window getting its own slice; constant
output, the cheapest), over a synthetic genome of ``--genome-mb`` Mb. It prints Mb of genome per
second (wall, all the machine's cores) and per CPU second, the split of the main and
writer threads' time, and the genome rate a GPU reaches on the same windows (H200,
README "GPU figures"): where the host rate is lower, that GPU would wait for the host.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time

import jax
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_task_overhead import PUBLISHED_NT  # noqa: E402

from genoseg.models import load_model  # noqa: E402
from genoseg.models.segment_nt import SegmentNTConfig, build_model, random_params  # noqa: E402

GOLDEN = ROOT / "tests" / "data" / "golden"
FEATURES = tuple(json.loads((GOLDEN / "segment_nt_tiny" / "jax_model" / "hyperparams.json").read_text())["features"])
#: Sizes of the published layout (``bench_task_overhead.PUBLISHED_NT``: 29 layers, width 1024).
NT_SIZES = {
    "tiny": dict(embed_dim=32, attention_heads=4, key_dim=8, ffn_embed_dim=64, num_layers=2),
    "small": dict(embed_dim=256, attention_heads=8, key_dim=32, ffn_embed_dim=512, num_layers=4),
    "published": {},
}


def nt_config(size: str) -> SegmentNTConfig:
    """The published SegmentNT layout (GLU swish, rotary, no FFN bias) at ``size``."""
    return SegmentNTConfig.from_hyperparams({**PUBLISHED_NT, **NT_SIZES[size], "features": FEATURES})


def nt_model(size: str, dtype: str, attention: str):
    cfg = nt_config(size)
    return build_model(cfg, random_params(cfg), compute_dtype=dtype, attention=attention)


def random_windows(rng, batch: int, length: int, alphabet: str = "ACGT") -> list[str]:
    letters = np.frombuffer(alphabet.encode(), dtype=np.uint8)
    codes = letters[rng.integers(0, len(letters), size=(batch, length))]
    return [row.tobytes().decode() for row in codes]


def time_predict(model, length: int, batch: int, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    seqs = random_windows(rng, batch, length)
    t0 = time.perf_counter()
    model.predict(seqs)
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.predict(seqs)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {"length": length, "batch": batch, "compile_s": round(compile_s, 3),
            "median_s": round(med, 5), "bases_per_s": round(batch * length / med)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="fewer shapes (for CI smoke runs)")
    ap.add_argument("--json", help="also write the rows as JSON here")
    ap.add_argument("--compare-authors", action="store_true",
                    help="A/B against the authors' jitted SegmentNT forward (needs nucleotide_transformer)")
    ap.add_argument("--engine", action="store_true", help="predict_chunk statistics on a synthetic genome")
    ap.add_argument("--length", type=int, default=6144, help="window length for --compare-authors")
    ap.add_argument("--backbone", choices=["segment_nt", "segment_enformer", "segment_borzoi"],
                    default="segment_nt", help="backbone for --compare-authors (Enformer/Borzoi: golden tiny "
                    "configuration at 8,192 bp, or --size published at the published window)")
    ap.add_argument("--size", choices=sorted(NT_SIZES), default="small",
                    help="SegmentNT size for --compare-authors (published: 29 layers, width 1024)")
    ap.add_argument("--batch", type=int, default=8, help="batch size for --compare-authors / --engine")
    ap.add_argument("--host-rate", action="store_true",
                    help="host side of predict_chunk per backbone, with a model that computes nothing")
    ap.add_argument("--genome-mb", type=float, default=20.0, help="genome size for --host-rate (Mb)")
    ap.add_argument("--patterns", default="noise,realistic,constant", help="outputs for --host-rate")
    args = ap.parse_args(argv)
    if args.host_rate:
        return host_rate(args.genome_mb, args.json, args.patterns.split(","))
    if args.compare_authors and args.backbone != "segment_nt":
        size = "published" if args.size == "published" else "tiny"
        return compare_authors_trunk(args.backbone, size, args.batch, args.repeats, args.json)
    if args.compare_authors:
        return compare_authors(args.length, args.batch, args.repeats, args.json, args.size)
    if args.engine:
        return engine(args.batch, args.json)

    backend = jax.default_backend()
    on_gpu = backend == "gpu"
    lengths = [1536, 6144] if args.quick else [1536, 6144, 12288]
    batches = [1, 8] if args.quick else [1, 4, 16]
    dtypes = ["float32", "bfloat16"] if on_gpu else ["float32"]
    attentions = ["einsum", "dot_product"] if on_gpu else ["einsum"]
    sizes = ["tiny"] if args.quick else ["tiny", "small"]
    print(f"backend: {backend} ({jax.devices()[0].device_kind}); median of {args.repeats} runs")
    rows = []
    header = f"{'model':28s} {'dtype':9s} {'attention':11s} {'length':>7s} {'batch':>5s} {'compile s':>9s} {'median s':>9s} {'bases/s':>12s}"
    print(header)
    print("-" * len(header))

    def report(name, dtype, attention, r):
        rows.append({"model": name, "dtype": dtype, "attention": attention, **r})
        print(f"{name:28s} {dtype:9s} {attention:11s} {r['length']:7d} {r['batch']:5d} "
              f"{r['compile_s']:9.2f} {r['median_s']:9.4f} {r['bases_per_s']:12,d}")

    for size in sizes:
        for dtype in dtypes:
            for attention in attentions:
                model = nt_model(size, dtype, attention)
                for length in lengths:
                    for batch in batches:
                        report(f"segment_nt ({size}, random)", dtype, attention,
                               time_predict(model, length, batch, args.repeats))

    for name, lengths_other in [("segment_enformer_tiny", [2048, 8192]), ("segment_borzoi_tiny", [2048, 8192])]:
        for dtype in dtypes:
            try:
                model = load_model(GOLDEN / name, compute_dtype=dtype)
            except (ImportError, NotImplementedError, ValueError) as exc:
                print(f"{name}: skipped ({exc})")
                break
            for length in lengths_other:
                for batch in batches:
                    report(name, dtype, "-", time_predict(model, length, batch, args.repeats))

    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


# ------------------------------------------------------------------ vs the authors
def authors_segment_nt(cfg: SegmentNTConfig):
    """The authors' SegmentNT forward (their modules, their names) for ``cfg``:
    ``(jitted probs(params, tokens), init(rng, tokens) -> params, to_published)``, where
    ``to_published`` renames their parameter tree to the published checkpoint names
    (what genoseg loads). ``None`` when their package is not importable."""
    try:
        import haiku as hk
        from nucleotide_transformer.heads import UNetHead
        from nucleotide_transformer.model import SegmentNTConfig as AuthorsConfig
        from nucleotide_transformer.model import build_nucleotide_transformer_with_head_fn
    except ImportError:
        return None
    import jax.numpy as jnp

    from genoseg.models.segment_nt import HEAD, TRUNK

    name = "nucleotide_transformersegment_nt"  # what their get_pretrained_segment_nt_model uses
    acfg = AuthorsConfig(
        alphabet_size=cfg.vocab_size, pad_token_id=1, mask_token_id=2, max_positions=cfg.max_positions,
        embed_scale=cfg.embed_scale, emb_layer_norm_before=cfg.emb_layer_norm_before, key_size=cfg.key_dim,
        attention_heads=cfg.attention_heads, embed_dim=cfg.embed_dim, ffn_embed_dim=cfg.ffn_embed_dim,
        num_layers=cfg.num_layers, positional_embedding=None, add_bias_kv=cfg.add_bias_kv,
        add_bias_ffn=cfg.add_bias_ffn, use_glu_in_ffn=cfg.use_glu_in_ffn,
        ffn_activation_name=cfg.ffn_activation_name, use_rotary_embedding=True, token_dropout=False,
        masking_ratio=0.0, masking_prob=0.0, rescaling_factor=cfg.rescaling_factor, features=list(cfg.features))
    fwd = hk.transform(build_nucleotide_transformer_with_head_fn(
        acfg, lambda: UNetHead(num_features=len(cfg.features), embed_dimension=cfg.embed_dim, name=name),
        model_name=name))

    def probs(params, tokens):
        logits = fwd.apply(params, None, tokens)["logits"].astype(jnp.float32)
        return jax.nn.softmax(logits, axis=-1)[..., -1]

    def to_published(params):
        return {k.replace(name + "_1", HEAD).replace(name, TRUNK): {p: np.asarray(v) for p, v in d.items()}
                for k, d in params.items()}

    return jax.jit(probs), fwd.init, to_published


def race(variants: dict, repeats: int) -> tuple[dict, dict]:
    """Outputs (first call, which also compiles) and median seconds of each of
    ``variants`` (name -> function returning a device array), timed interleaved so load
    on the machine hits all alike."""
    outputs = {name: np.asarray(fn()) for name, fn in variants.items()}
    times: dict[str, list] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            fn().block_until_ready()
            times[name].append(time.perf_counter() - t0)
    return outputs, {k: statistics.median(v) for k, v in times.items()}


def report_race(out: dict, names, med: dict, diffs: dict, header: str, genoseg_label: str) -> None:
    """Print the authors' time and each genoseg variant's time, ratio and max |dp|; add
    them to ``out``."""
    print(header + f", median of {out['repeats']} interleaved calls (ratio > 1: genoseg faster)")
    print(f"  authors' jitted forward, float32   {med['authors']:.4f} s")
    for name in names:
        ratio = med["authors"] / med[name]
        out[f"{name} median_s"], out[f"{name} ratio"], out[f"{name} max_abs_diff"] = med[name], ratio, diffs[name]
        print(f"  {name + (genoseg_label if name == 'genoseg' else ''):34s} {med[name]:.4f} s   "
              f"ratio {ratio:.2f}x   max |dp| vs authors {diffs[name]:.1e}")


def compare_authors(length: int, batch: int, repeats: int, json_out=None, size: str = "small") -> int:
    """A/B timing of genoseg vs the authors' jitted forward (see module docstring).

    Both in float32 with the same checkpoint; on a GPU genoseg's bfloat16 path with the
    fused attention is timed beside them (the authors' code has no such path)."""
    cfg = nt_config(size)
    authors = authors_segment_nt(cfg)
    if authors is None:
        print("nucleotide_transformer is not importable: git clone "
              "github.com/instadeepai/nucleotide-transformer and pip install --no-deps it")
        return 2
    afn, init, to_published = authors
    from genoseg.models.segment_nt import tokenize

    tokens = jax.numpy.asarray(tokenize(random_windows(np.random.default_rng(0), batch, length)))
    aparams = init(jax.random.PRNGKey(0), tokens[:1, :5])
    tree = to_published(aparams)
    variants = {"authors": lambda: afn(aparams, tokens)}
    models = {"genoseg": build_model(cfg, tree, attention="einsum")}
    if jax.default_backend() == "gpu":
        models["genoseg f32 dot_product"] = build_model(cfg, tree, attention="dot_product")
        models["genoseg bf16 fused"] = build_model(cfg, tree, compute_dtype="bfloat16", attention="dot_product")
    for name, model in models.items():
        variants[name] = lambda model=model: model.predict_tokens(tokens)
    outputs, med = race(variants, repeats)
    out = {"backend": jax.default_backend(), "device": jax.devices()[0].device_kind, "layers": cfg.num_layers,
           "width": cfg.embed_dim, "length": length, "batch": batch, "repeats": repeats,
           "authors_median_s": med["authors"], "genoseg_median_s": med["genoseg"],
           "ratio": med["authors"] / med["genoseg"],
           "max_abs_diff": float(np.abs(outputs["authors"] - outputs["genoseg"]).max())}
    diffs = {name: float(np.abs(outputs["authors"] - outputs[name]).max()) for name in models}
    report_race(out, models, med, diffs, f"SegmentNT {cfg.num_layers} layers, width {cfg.embed_dim}, {batch} x "
                f"{length} bp, {out['backend']} ({out['device']})", " float32 (einsum)")
    if json_out:
        pathlib.Path(json_out).write_text(json.dumps(out, indent=1))
    return 0


def authors_trunk(backbone: str, raw_cfg: dict, features):
    """The authors' SegmentEnformer / SegmentBorzoi forward, built as their
    ``get_pretrained_segment_*_model`` builds it but with the configuration ``raw_cfg``
    (their field names): ``(jitted probs(params, state, tokens), transformed)``, or
    ``None`` when their package is not importable."""
    try:
        import haiku as hk
        import jax.numpy as jnp
        from nucleotide_transformer.enformer.heads import UNetHead
        if backbone == "segment_enformer":
            from nucleotide_transformer.enformer.model import EnformerConfig as AuthorsConfig
            from nucleotide_transformer.enformer.model import build_enformer_with_head_fn as build
            names = dict(embedding_name="embedding_transformer_tower", name="Enformer")
        else:
            from nucleotide_transformer.borzoi.model import BorzoiConfig as AuthorsConfig
            from nucleotide_transformer.borzoi.model import build_borzoi_fn_with_head_fn as build
            names = dict(embedding_name="embedding", name="Borzoi")
    except ImportError:
        return None
    acfg = AuthorsConfig(**raw_cfg)
    fwd = hk.transform_with_state(build(
        config=acfg, compute_dtype=jnp.float32, **names,
        head_fn=lambda: UNetHead(features=list(features), embed_dimension=acfg.embed_dim,
                                 nucl_per_token=acfg.dim_divisible_by, remove_cls_token=False)))

    def probs(params, state, tokens):
        outs, _ = fwd.apply(params, state, None, tokens)
        return jax.nn.softmax(outs["logits"].astype(jnp.float32), axis=-1)[..., -1]

    return jax.jit(probs), fwd


def compare_authors_trunk(backbone: str, size: str, batch: int, repeats: int, json_out=None) -> int:
    """A/B timing of genoseg's SegmentEnformer / SegmentBorzoi against the authors'
    jitted forward on the same random weights (their init, published names): ``tiny``
    is the golden configuration at 8,192 bp, ``published`` the authors' default at its
    published window. On a GPU genoseg's bfloat16 run is timed beside them."""
    from genoseg.models import segment_borzoi, segment_enformer

    module = segment_enformer if backbone == "segment_enformer" else segment_borzoi
    raw = json.loads((GOLDEN / f"{backbone}_tiny" / "config.json").read_text()) if size == "tiny" else {}
    cfg = module.EnformerConfig(**raw) if module is segment_enformer else module.BorzoiConfig(**raw)
    authors = authors_trunk(backbone, raw, cfg.features)
    if authors is None:
        print("nucleotide_transformer is not importable (see --compare-authors)")
        return 2
    afn, transformed = authors
    length = 8192 if size == "tiny" else module.DEFAULT_WINDOW
    seqs = random_windows(np.random.default_rng(0), batch, length)
    params, state = transformed.init(jax.random.PRNGKey(0), jax.numpy.zeros((1, length), jax.numpy.int32),
                                     is_training=True)  # creates the batch-norm moving averages
    rng = np.random.default_rng(1)
    tree = {m: {k: np.asarray(v) for k, v in d.items()} for m, d in params.items()}
    # init leaves the moving averages at zero (a variance of 0): give them plausible values
    st = {m: {k: (rng.uniform(0.5, 1.5, np.shape(v)) if "var" in m else rng.normal(0, 0.1, np.shape(v))
                  ).astype(np.float32) if k == "average" else np.asarray(v) for k, v in d.items()}
          for m, d in state.items()}
    state = jax.tree_util.tree_map(jax.numpy.asarray, st)
    built = {"genoseg": module.build_model(cfg, tree, st, window_length=length)}
    if jax.default_backend() == "gpu":
        built["genoseg bf16"] = module.build_model(cfg, tree, st, compute_dtype="bfloat16", window_length=length)
    tokens = jax.numpy.asarray(built["genoseg"].tokenize(seqs))
    lo, hi = built["genoseg"].output_span(length)
    variants = {"authors": lambda: afn(params, state, tokens)}
    for name, model in built.items():
        variants[name] = lambda model=model: model.predict_tokens(tokens)
    outputs, med = race(variants, repeats)
    ref = outputs["authors"]
    out = {"backbone": backbone, "size": size, "backend": jax.default_backend(),
           "device": jax.devices()[0].device_kind, "length": length, "batch": batch, "repeats": repeats,
           "authors_median_s": med["authors"]}
    # the authors' head covers every input base; genoseg's output covers its span [lo, hi)
    ref = ref[:, lo:hi] if ref.shape[1] != hi - lo else ref
    diffs = {name: float(np.abs(ref - outputs[name]).max()) for name in built}
    report_race(out, built, med, diffs, f"{backbone} ({size}), {batch} x {length:,} bp, {out['backend']} "
                f"({out['device']})", " float32")
    if json_out:
        pathlib.Path(json_out).write_text(json.dumps(out, indent=1))
    return 0


# ------------------------------------------------------------------------ engine
def engine(batch: int, json_out=None) -> int:
    """predict_chunk statistics per chunk on a synthetic genome (see module docstring)."""
    import tempfile

    sys.path.insert(0, str(ROOT / "tests"))
    from fakes import FakeModel

    from genoseg import windows
    from genoseg.fasta import Fasta
    from genoseg.predict import predict_chunk

    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        fasta = _synthetic_genome(rng, pathlib.Path(tmp) / "g.fa")
        for label, model in (("segment_nt tiny (random), L=1536", nt_model("tiny", "float32", "auto")),
                             ("fake fast model, L=1536", FakeModel(window_length=1536))):
            g = windows.geometry_from_model(model, 1536)
            _, chunks = windows.make_plan(str(fasta), g, None, 600)
            print(f"{label}: {len(chunks)} chunks, batch {batch}")
            print(f"  {'chunk':>5s} {'windows':>7s} {'padded':>7s} {'per-run':>7s} {'idle':>6s} "
                  f"{'host':>6s} {'xfer':>6s} {'device':>7s} {'merge':>6s} {'write':>6s} {'merge Mb/s':>10s}")
            with Fasta(str(fasta)) as fa:
                for ch in chunks:
                    st = predict_chunk(model, fa, ch, str(pathlib.Path(tmp) / f"c{ch['chunk']}.parquet"),
                                       batch_size=batch, overwrite=True)
                    st["per_run_padded_fraction"] = _per_run_padding(ch, batch)
                    rows.append({"model": label, **st})
                    ms = st["per_batch_ms"]
                    print(f"  {st['chunk']:5d} {st['windows']:7d} {st['padded_fraction']:7.1%} "
                          f"{st['per_run_padded_fraction']:7.1%} {st['device_idle_fraction']:6.1%} "
                          f"{ms['host']:6.1f} {ms['transfer']:6.1f} {ms['device']:7.1f} {ms['merge']:6.1f} "
                          f"{ms['write']:6.1f} {st['merge_bases_per_s'] / 1e6:10.1f}")
            print("  (per batch, ms; padded: copies computed / windows computed; per-run: the same with "
                  "batches cut at every run or contig end)")
    for P in (1536, 30_000):
        r = merge_alone(P)
        rows.append(r)
        print(f"merge alone (RingMerger, {P}-bp windows, overlap 0.5, 14 features, {r['bases'] / 1e6:.0f} Mb): "
              f"{r['bases_per_s'] / 1e6:.1f} Mb/s wall, {r['bases_per_cpu_s'] / 1e6:.1f} Mb per CPU second, "
              f"ring {r['ring_mb']:.0f} MB")
    if json_out:
        pathlib.Path(json_out).write_text(json.dumps(rows, indent=1))
    return 0


#: Published window, output span and the batch and windows per second measured in
#: bfloat16 on one H200 (README, "GPU figures (H200)"); float32 from
#: ``genoseg.windows.WORK_TABLE`` (seconds per window, same card).
GPU_RATES = {
    "segment_nt": dict(window=30_000, crop=0, batch=8, bf16_windows_per_s=56.9),
    "segment_enformer": dict(window=196_608, crop=0, batch=4, bf16_windows_per_s=87.4),
    "segment_borzoi": dict(window=524_288, crop=163_840, batch=2, bf16_windows_per_s=43.8),
}


def host_rate(genome_mb: float, json_out=None, patterns=("noise", "realistic", "constant")) -> int:
    """``predict_chunk`` with :class:`fakes.ReplayModel` per backbone and output pattern
    (see module docstring); one chunk per run, time and CPU of the whole call."""
    import tempfile

    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_engine import realistic_codes, synth_fasta
    from fakes import FEATURES, ReplayModel

    from genoseg import windows
    from genoseg.fasta import Fasta
    from genoseg.predict import Jobs, predict_chunk

    length = int(genome_mb * 1e6)
    rows = []
    print(f"host side of predict_chunk, {length / 1e6:.0f} Mb genome, {len(jax.devices('cpu'))} JAX CPU device(s)")
    print(f"{'backbone':17s} {'output':9s} {'batch':>5s} {'windows':>7s} {'Mb/s':>6s} {'Mb/CPU-s':>8s} "
          f"{'host s':>6s} {'merge s':>7s} {'write s':>7s} {'GPU bf16 Mb/s':>13s} {'GPU f32 Mb/s':>12s}")
    with tempfile.TemporaryDirectory() as tmp:
        fasta = str(pathlib.Path(tmp) / "g.fa")
        synth_fasta(fasta, length, gaps=0)
        track = realistic_codes(length) if "realistic" in patterns else None
        with Fasta(fasta) as fa:
            sequence = fa.fetch_bytes("chrS", 0, length).tobytes().decode() if track else ""
        for backbone, r in GPU_RATES.items():
            for pattern in patterns:
                shape = dict(backbone=backbone, window_length=r["window"], crop=r["crop"],
                             length_multiple=128 if backbone != "segment_nt" else 24)
                g = windows.geometry_from_model(ReplayModel("constant", **shape), r["window"])
                _, chunks = windows.make_plan(fasta, g, None, 10 ** 6)
                if pattern == "realistic":
                    wins = [(int(s), int(n)) for ch in chunks for j in [Jobs.from_chunk(ch, g)]
                            for s, n in zip(j.start, j.length)]
                    model = ReplayModel("track", track=track[1], sequence=sequence, windows=wins,
                                        features=track[0], **shape)
                else:
                    model = ReplayModel(pattern, features=FEATURES, **shape)
                step = g.step(r["window"])  # genome bases per window
                t0, c0 = time.perf_counter(), time.process_time()
                with Fasta(fasta) as fa:
                    st = [predict_chunk(model, fa, ch, str(pathlib.Path(tmp) / f"c{ch['chunk']}.parquet"),
                                        batch_size=r["batch"], overwrite=True) for ch in chunks]
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                total = {k: sum(float(x.get(k, 0.0)) for x in st) for k in ("host_s", "merge_s", "write_s")}
                nwin = sum(int(x["windows"]) for x in st)
                gpu_bf16 = r["bf16_windows_per_s"] * step / 1e6
                gpu_f32 = step / windows.WORK_TABLE[backbone][0] / 1e6
                row = {"backbone": backbone, "pattern": pattern, "batch": r["batch"], "windows": nwin,
                       "genome_bases": length, "wall_s": wall, "cpu_s": cpu, "bases_per_s": length / wall,
                       "bases_per_cpu_s": length / cpu, **total, "gpu_bf16_bases_per_s": gpu_bf16 * 1e6,
                       "gpu_f32_bases_per_s": gpu_f32 * 1e6}
                rows.append(row)
                print(f"{backbone:17s} {pattern:9s} {r['batch']:5d} {nwin:7d} {length / wall / 1e6:6.2f} "
                      f"{length / cpu / 1e6:8.2f} {total['host_s']:6.1f} {total['merge_s']:7.1f} "
                      f"{total['write_s']:7.1f} {gpu_bf16:13.2f} {gpu_f32:12.2f}", flush=True)
    print("(Mb of genome; noise and constant: 14 features, realistic: the demo model's 11; host, merge: main "
          "thread; write: Parquet encoding on the writer thread; GPU: the "
          "genome rate of the same windows on one H200, overlap 0.5)")
    if json_out:
        pathlib.Path(json_out).write_text(json.dumps(rows, indent=1))
    return 0


def merge_alone(P: int, bases: int = 6_000_000, batch: int = 8, F: int = 14) -> dict:
    """The merge on its own: weighted add of every window, mean, uint8 codes (the
    writer is a no-op), over one long contig; median of 3."""
    from genoseg.predict import Jobs, RingMerger, merge_plan, schedule, taper

    step = P // 2
    nwin = (bases - P) // step + 1
    starts = np.arange(nwin, dtype=np.int64) * step
    length = int(starts[-1] + P)
    jobs = Jobs(part=np.zeros(nwin, np.int64), start=starts, length=np.full(nwin, P), ostart=starts,
                vlo=starts, vhi=starts + P, skip=np.zeros(nwin, np.int64), offset=np.array([0, length]))
    batches = schedule(jobs.length, jobs.vlo, jobs.vhi, batch, 10**9)
    flush, ring = merge_plan(batches, jobs.vlo, jobs.vhi)
    probs = np.random.default_rng(0).random((batch, P, F), dtype=np.float32)
    w = taper(P)
    times, cpu = [], []
    for _ in range(3):
        merger = RingMerger(ring, F, jobs, [{"contig": "c", "owned": [0, length]}], lambda *a: None)
        t0, c0 = time.perf_counter(), time.process_time()
        for k, b in enumerate(batches):
            merger.flush(int(flush[k]))
            merger.add([(int(jobs.vlo[i]), int(jobs.vhi[i]), w, probs[r]) for r, i in enumerate(b.tolist())],
                       int(flush[k + 1]) if k + 1 < len(batches) else length)
        merger.flush(length)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"merge_window": P, "bases": length, "bases_per_s": length / statistics.median(times),
            "bases_per_cpu_s": length / statistics.median(cpu), "ring_mb": merger.nbytes / 2**20}


def _synthetic_genome(rng, path: pathlib.Path) -> pathlib.Path:
    """~3 Mb: one contig with N gaps every ~200 kb and short runs between some of
    them, plus 300 scaffolds of 1-20 kb."""
    def bases(n):
        return np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, n)].tobytes().decode()

    pieces = []
    for _ in range(12):
        pieces += [bases(int(rng.integers(150_000, 250_000))), "N" * 100, bases(int(rng.integers(200, 1400))),
                   "N" * 50]
    records = [("chr1", "".join(pieces))]
    records += [(f"scaffold_{i}", bases(int(rng.integers(1_000, 20_000)))) for i in range(300)]
    with open(path, "w") as fh:
        for name, seq in records:
            fh.write(f">{name}\n")
            for i in range(0, len(seq), 80):
                fh.write(seq[i:i + 80] + "\n")
    return path


def _per_run_padding(chunk: dict, batch: int) -> float:
    """Padded fraction had batches been cut wherever the window length or contig changes."""
    computed = needed = 0
    for part in chunk["parts"]:
        lens = [n for _, n in part["compute"]]
        cuts = [0] + [i for i in range(1, len(lens)) if lens[i] != lens[i - 1]] + [len(lens)]
        for a, b in zip(cuts, cuts[1:]):
            needed += b - a
            computed += -(-(b - a) // batch) * batch
    return (computed - needed) / computed if computed else 0.0


if __name__ == "__main__":
    sys.exit(main())
