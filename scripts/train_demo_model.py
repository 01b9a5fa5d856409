#!/usr/bin/env python
"""Train the demonstration SegmentNT-architecture model on simulated genomes.

The model is the published SegmentNT code path (``genoseg.models.segment_nt.build_forward``:
Nucleotide Transformer v2 encoder with rotary embeddings + U-Net head), tiny, trained
from scratch on genomes from ``genoseg.simulate.TRAINING_SEEDS``. Loss: per-base,
per-feature binary cross-entropy on the 2-class logits (softmax[..., 1] = probability),
positives of rare features (splice sites, polyA signals) up-weighted (at most 10x).
Writes the published layout::

    OUT/config.json                   {"backbone": "segment_nt", "window_length": N}
    OUT/jax_model/hyperparams.json    the published keys + features
    OUT/jax_model/pytree_ckpt.joblib  {module: {param: float32 array}}

then evaluates the saved model (loaded through ``genoseg.models.load_model``) on a
held-out seed with a plain 0.5 threshold and prints per-feature base-level F1.

    PYTHONPATH=src python scripts/train_demo_model.py --out assets/demo_model
Needs ``optax`` (``pip install genoseg[train]``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import joblib  # noqa: E402
import optax  # noqa: E402

from genoseg import evaluate as ev  # noqa: E402
from genoseg.models import load_model  # noqa: E402
from genoseg.models.segment_nt import NUM_SPECIAL_TOKENS, SegmentNTConfig, build_forward, tokenize  # noqa: E402
from genoseg.simulate import DEFAULT_SEED, FEATURES, TRAINING_SEEDS, simulate_genome  # noqa: E402

HYPERPARAMS = {  # same keys as the published hyperparams.json
    "k_for_kmers": 6, "max_positions": 2048, "embed_scale": 1.0, "emb_layer_norm_before": False,
    "key_dim": 16, "attention_heads": 4, "embed_dim": 64, "ffn_embed_dim": 128, "num_layers": 2,
    "positional_embedding": None, "add_bias_kv": False, "add_bias_ffn": False,
    "use_glu_in_ffn": True, "ffn_activation_name": "swish", "use_rotary_embedding": True,
    "token_dropout": False, "masking_ratio": 0.0, "masking_prob": 0.0, "rescaling_factor": 1.0,
}
# A=0 T=1 C=2 G=3: the authors' k-mer vocabulary order ("ATCG")
_CODE = np.full(256, 255, dtype=np.uint8)
for _i, _b in enumerate(b"ATCG"):
    _CODE[_b] = _i
    _CODE[_b + 32] = _i


class Data:
    """Random A/C/G/T windows and per-base labels from simulated training genomes."""

    def __init__(self, seeds, window, rng):
        self.window, self.rng = window, rng
        self.codes, self.labels, self.starts = [], [], []
        for seed in seeds:
            g = simulate_genome(seed)
            for chrom, seq in g.contigs.items():
                codes = _CODE[np.frombuffer(seq.encode(), dtype=np.uint8)]
                bad = np.concatenate([[0], np.cumsum(codes == 255)])
                n = len(seq) - window + 1
                if n <= 0:
                    continue
                ok = np.flatnonzero(bad[window:window + n] - bad[:n] == 0)  # window fully A/C/G/T
                if ok.size == 0:
                    continue
                self.codes.append(codes)
                self.labels.append(np.packbits(g.masks(chrom, FEATURES), axis=0))  # bit-packed along bases
                self.starts.append(ok)
        total = sum(len(c) for c in self.codes)
        self.prevalence = sum(np.unpackbits(lab, axis=0)[:len(c)].sum(axis=0) for lab, c in
                              zip(self.labels, self.codes)) / total
        self.weights = np.array([s.size for s in self.starts], dtype=np.float64)
        self.weights /= self.weights.sum()
        self._kmer = (4 ** np.arange(5, -1, -1)).astype(np.int32)

    def batch(self, size):
        w = self.window
        toks = np.empty((size, w // 6 + 1), dtype=np.int32)
        labels = np.empty((size, w, len(FEATURES)), dtype=np.float32)
        which = self.rng.choice(len(self.codes), size=size, p=self.weights)
        for b, i in enumerate(which):
            s = int(self.rng.choice(self.starts[i]))
            c = self.codes[i][s:s + w].astype(np.int32)
            toks[b, 0] = 3
            toks[b, 1:] = c.reshape(-1, 6) @ self._kmer + NUM_SPECIAL_TOKENS
            labels[b] = self._label_rows(i, s, w)
        return toks, labels

    def _label_rows(self, i, s, w):
        # labels stored bit-packed along bases (axis 0) to save memory
        packed = self.labels[i]
        lo, hi = s // 8, (s + w + 7) // 8
        rows = np.unpackbits(packed[lo:hi], axis=0)
        off = s - lo * 8
        return rows[off:off + w]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="assets/demo_model")
    ap.add_argument("--window", type=int, default=1536)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pos-weight-target", type=float, default=0.03,
                    help="positives of features rarer than this are up-weighted by target/prevalence")
    ap.add_argument("--max-pos-weight", type=float, default=10.0)
    ap.add_argument("--eval-seed", type=int, default=DEFAULT_SEED)
    args = ap.parse_args(argv)
    assert args.window % 24 == 0
    assert args.eval_seed not in TRAINING_SEEDS

    t0 = time.time()
    rng = np.random.default_rng(args.seed)
    data = Data(TRAINING_SEEDS, args.window, rng)
    print(f"data: {len(TRAINING_SEEDS)} genomes, {sum(len(c) for c in data.codes) / 1e6:.1f} Mbp "
          f"({time.time() - t0:.1f}s)", flush=True)

    pos_w = np.clip(args.pos_weight_target / np.maximum(data.prevalence, 1e-9), 1.0, args.max_pos_weight)
    print("positive weights:", dict(zip(FEATURES, np.round(pos_w, 2).tolist())), flush=True)
    pos_w = jnp.asarray(pos_w, dtype=jnp.float32)
    hp = dict(HYPERPARAMS, features=list(FEATURES))
    cfg = SegmentNTConfig.from_hyperparams(hp)
    net = build_forward(cfg, cfg.rescaling_factor, jnp.float32, "einsum")
    toks, _ = data.batch(args.batch)
    # check the fast tokenisation against the model's tokenizer once
    s0 = int(data.starts[0][0])
    c0 = data.codes[0][s0:s0 + args.window]
    seq = "".join("ATCG"[c] for c in c0)
    fast = np.concatenate([[3], c0.astype(np.int32).reshape(-1, 6) @ data._kmer + NUM_SPECIAL_TOKENS])
    assert np.array_equal(tokenize([seq])[0], fast), "tokenisation mismatch"
    params = net.init(jax.random.PRNGKey(args.seed), jnp.asarray(toks))
    n_params = sum(x.size for x in jax.tree_util.tree_leaves(params))
    print(f"model: {n_params:,} parameters, window {args.window} bp", flush=True)

    sched = optax.warmup_cosine_decay_schedule(0.0, args.lr, min(100, args.steps // 10), args.steps, args.lr * 0.05)
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(sched, weight_decay=1e-4))
    opt_state = opt.init(params)

    def loss_fn(params, toks, labels):
        logp = jax.nn.log_softmax(net.apply(params, toks), axis=-1)  # [B, L, F, 2]
        bce = -(labels * logp[..., 1] + (1.0 - labels) * logp[..., 0])
        weighted = bce * (1.0 + (pos_w - 1.0) * labels)  # up-weight positives of rare features
        return weighted.mean(), bce.mean(axis=(0, 1))

    @jax.jit
    def step(params, opt_state, toks, labels):
        (loss, per_f), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, toks, labels)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, per_f

    t1 = time.time()
    ema = None  # exponential moving average of the (weighted) training loss
    for i in range(1, args.steps + 1):
        toks, labels = data.batch(args.batch)
        params, opt_state, loss, per_f = step(params, opt_state, toks, labels)
        loss = float(loss)
        ema = loss if ema is None else 0.98 * ema + 0.02 * loss
        if i % 100 == 0 or i == args.steps:
            print(f"step {i:5d}  loss {loss:.4f}  (ema {ema:.4f})  {time.time() - t1:.0f}s", flush=True)
    train_s = time.time() - t1
    print("last batch per-feature BCE (unweighted):", dict(zip(FEATURES, np.round(np.asarray(per_f), 4).tolist())))

    # ---- write the published layout
    jdir = os.path.join(args.out, "jax_model")
    os.makedirs(jdir, exist_ok=True)
    tree = {m: {k: np.asarray(v, dtype=np.float32) for k, v in leaves.items()} for m, leaves in params.items()}
    joblib.dump(tree, os.path.join(jdir, "pytree_ckpt.joblib"))
    with open(os.path.join(jdir, "hyperparams.json"), "w") as fh:
        json.dump(hp, fh, indent=1)
        fh.write("\n")
    with open(os.path.join(args.out, "config.json"), "w") as fh:
        json.dump({"backbone": "segment_nt", "window_length": args.window}, fh, indent=1)
        fh.write("\n")
    with open(os.path.join(args.out, "training.json"), "w") as fh:
        json.dump({"training_seeds": list(TRAINING_SEEDS), "steps": args.steps, "batch": args.batch,
                   "lr": args.lr, "seed": args.seed,
                   "positive_weights": dict(zip(FEATURES, np.round(np.asarray(pos_w), 3).tolist())), "window": args.window, "train_seconds": round(train_s, 1),
                   "final_loss_ema": round(ema, 5), "parameters": int(n_params)}, fh, indent=1)
        fh.write("\n")
    print(f"wrote {args.out} (training {train_s:.0f}s)", flush=True)

    # ---- held-out evaluation through the public API
    model = load_model(args.out)
    g = simulate_genome(args.eval_seed)
    t2 = time.time()
    preds = ev.predict_contigs(model, g.contigs)
    calls = ev.threshold_calls(preds, model.features, 0.5)
    truth = ev.restrict(g.features[["chrom", "start", "end", "feature"]], preds)
    df = ev.evaluate_intervals(truth, calls, features=model.features, called_features=model.features)
    print(f"held-out seed {args.eval_seed} ({time.time() - t2:.0f}s to predict):")
    print(ev.format_table(df))
    with open(os.path.join(args.out, "training.json")) as fh:
        meta = json.load(fh)
    meta["heldout"] = {"seed": args.eval_seed, "threshold": 0.5,
                       "f1": {r.feature: round(float(r.f1), 4) for r in df.itertuples()},
                       "mean_f1": round(df.attrs["mean_f1"], 4)}
    with open(os.path.join(args.out, "training.json"), "w") as fh:
        json.dump(meta, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
