"""SegmentEnformer and SegmentBorzoi against the authors' golden outputs, input
validation, bfloat16, Borzoi's output span / target length, configuration handling."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from genoseg.errors import CheckpointError
from genoseg.models import detect_backbone, load_model
from genoseg.models import segment_borzoi as sb
from genoseg.models import segment_enformer as se
from genoseg.models._trunks import FEATURES, expected_shapes, read_config, shift_relative

CASES = {"segment_enformer_tiny": "L256", "segment_borzoi_tiny": "L512"}
# bfloat16 vs the float32 golden, max |dp| measured on CPU: Enformer 4.4e-3 (mean 8.2e-4),
# Borzoi 2.2e-2 (mean 1.9e-3; 1.6e-2 before the softmax was normalised after the value
# product: bfloat16 noise of one case). Bars with ~2-3x margin.
BF16_ATOL = {"segment_enformer_tiny": 1.5e-2, "segment_borzoi_tiny": 5e-2}
BF16_MEAN_ATOL = 5e-3

_MODELS = {}


def _model(golden_dir, name, dtype="float32"):
    key = (name, dtype)
    if key not in _MODELS:
        _MODELS[key] = load_model(golden_dir / name, compute_dtype=dtype)
    return _MODELS[key]


def _case(golden_dir, name):
    d = np.load(golden_dir / name / f"case_{CASES[name]}.npz")
    return [str(s) for s in d["sequences"]], d


def _model_dir(tmp_path, golden_dir, name, config, sub="."):
    """A model directory sharing the golden checkpoint, with its own config.json."""
    d = tmp_path / sub / name
    d.mkdir(parents=True)
    (d / "jax_model").symlink_to(golden_dir / name / "jax_model")
    if config is not None:
        (d / "config.json").write_text(json.dumps(config))
    return d


def _golden_config(golden_dir, name):
    return json.loads((golden_dir / name / "config.json").read_text())


# ------------------------------------------------------------------------ golden
@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_tokens_probabilities_logits(golden_dir, name):
    model = _model(golden_dir, name)
    seqs, d = _case(golden_dir, name)
    assert "N" * 20 in seqs[1]  # the N-run case is covered
    np.testing.assert_array_equal(model.tokenize(seqs), d["tokens"])
    probs = model.predict(seqs)
    assert probs.dtype == np.float32 and probs.shape == d["probabilities"].shape
    start, end = model.output_span(len(seqs[0]))
    assert probs.shape[1] == end - start
    rel = np.abs(probs - d["probabilities"]) / np.maximum(np.abs(d["probabilities"]), 1e-6)
    assert rel.max() < 1e-4
    np.testing.assert_allclose(model.logits(seqs), d["logits"], rtol=1e-4, atol=1e-5)


def test_golden_features_and_backbones(golden_dir):
    for name, backbone in [("segment_enformer_tiny", "segment_enformer"),
                           ("segment_borzoi_tiny", "segment_borzoi")]:
        golden = json.loads((golden_dir / name / "golden.json").read_text())
        model = _model(golden_dir, name)
        assert model.backbone == backbone
        assert model.features == golden["features"] == list(FEATURES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bfloat16_close_to_float32(golden_dir, name):
    model = _model(golden_dir, name, "bfloat16")
    seqs, d = _case(golden_dir, name)
    probs = model.predict(seqs)
    assert probs.dtype == np.float32 and np.isfinite(probs).all()
    diff = np.abs(probs - d["probabilities"])
    assert diff.max() < BF16_ATOL[name]
    assert diff.mean() < BF16_MEAN_ATOL


def test_lower_case_and_tokens(golden_dir):
    model = _model(golden_dir, "segment_enformer_tiny")
    seqs, _ = _case(golden_dir, "segment_enformer_tiny")
    np.testing.assert_array_equal(model.predict([s.lower() for s in seqs]), model.predict(seqs))
    np.testing.assert_array_equal(model.tokenize("ATCGNatcgn"), [[10, 11, 12, 13, 14] * 2])


# -------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "name,seq,pattern",
    [
        ("segment_enformer_tiny", "A" * 100 + "R" + "A" * 155, r"sequence 0, position 100: 'R' is an ambiguous IUPAC base"),
        ("segment_enformer_tiny", "A" * 7 + "-" + "A" * 248, r"position 7: '-' is not a base"),
        ("segment_borzoi_tiny", "C" * 511 + "é", r"position 511: 'é' is not a base"),
        ("segment_enformer_tiny", "A" * 250, r"SegmentEnformer windows must be a multiple of 32 bases, got 250; e.g. use 224 or 256"),
        ("segment_borzoi_tiny", "A" * 300, r"multiple of 32 bases of at least 256, got 300; e.g. use 288 or 320"),
        ("segment_borzoi_tiny", "A" * 224, r"multiple of 32 bases of at least 256, got 224; e.g. use 256"),
        ("segment_borzoi_tiny", "", r"sequence 0 is empty"),
    ],
)
def test_predict_refuses_bad_input(golden_dir, name, seq, pattern):
    with pytest.raises(ValueError, match=pattern):
        _model(golden_dir, name).predict(seq)


def test_bad_character_in_second_sequence(golden_dir):
    with pytest.raises(ValueError, match=r"sequence 1, position 3: 'X'"):
        _model(golden_dir, "segment_borzoi_tiny").predict(["A" * 512, "ACGX" + "A" * 508])


def test_default_length_rules():
    assert se.EnformerConfig().length_multiple == 512
    assert se.DEFAULT_WINDOW % 512 == 0
    cfg = sb.BorzoiConfig()
    assert (cfg.length_multiple, cfg.min_length, cfg.predicted_length) == (128, 196_608, 196_608)


# ----------------------------------------------------------------- loading
def test_load_model_infers_backbone(golden_dir, tmp_path):
    assert detect_backbone(str(golden_dir / "segment_enformer_tiny")) == "segment_enformer"
    assert detect_backbone(str(golden_dir / "segment_borzoi_tiny")) == "segment_borzoi"
    # no config.json and a neutral directory name: told apart by the checkpoint's modules
    for name, backbone in [("segment_enformer_tiny", "segment_enformer"),
                           ("segment_borzoi_tiny", "segment_borzoi")]:
        d = tmp_path / f"m_{backbone[-3:]}"
        d.mkdir()
        (d / "jax_model").symlink_to(golden_dir / name / "jax_model")
        assert detect_backbone(str(d)) == backbone


def test_window_length_option(golden_dir, tmp_path):
    assert _model(golden_dir, "segment_enformer_tiny").window_length == se.DEFAULT_WINDOW
    assert _model(golden_dir, "segment_borzoi_tiny").window_length == sb.DEFAULT_WINDOW
    cfg = dict(_golden_config(golden_dir, "segment_enformer_tiny"), window_length=4096)
    assert load_model(_model_dir(tmp_path, golden_dir, "segment_enformer_tiny", cfg)).window_length == 4096
    with pytest.raises(ValueError, match="multiple of 32 bases"):
        load_model(golden_dir / "segment_enformer_tiny", window_length=1000)


def test_config_errors(golden_dir, tmp_path):
    base = _golden_config(golden_dir, "segment_enformer_tiny")
    d = _model_dir(tmp_path, golden_dir, "segment_enformer_tiny", dict(base, dim_divisible_by=16))
    with pytest.raises(CheckpointError, match=r"dim_divisible_by \(16\) must equal 2 \*\* num_downsamples"):
        load_model(d)
    # no config.json: the published defaults do not fit the tiny checkpoint
    d = _model_dir(tmp_path, golden_dir, "segment_borzoi_tiny", None, sub="no_config")
    with pytest.raises(CheckpointError, match=r"params.joblib entry Borzoi/.* has shape \(.*16.*\), the configuration implies \(.*512.*\)"):
        load_model(d, backbone="segment_borzoi")
    with pytest.raises(ValueError, match="target_length must be -1"):
        sb.BorzoiConfig(target_length=30)
    with pytest.raises(ValueError, match="num_attention_heads"):
        se.EnformerConfig(embed_dim=100, num_attention_heads=8)


def test_config_features_override_and_unknown_keys(golden_dir, tmp_path):
    cfg = dict(_golden_config(golden_dir, "segment_borzoi_tiny"),
               features=list(reversed(FEATURES)), comment="made by hand")
    with pytest.warns(UserWarning, match=r"ignoring unknown keys \['comment'\]"):
        model = load_model(_model_dir(tmp_path, golden_dir, "segment_borzoi_tiny", cfg))
    assert model.features == list(reversed(FEATURES))
    cfg.pop("comment")
    cfg["features"] = list(FEATURES[:3])
    with pytest.raises(CheckpointError, match=r"u_net_head/~/fc/b has shape \(224,\)"):
        load_model(_model_dir(tmp_path, golden_dir, "segment_borzoi_tiny", cfg, sub="three"))


# ------------------------------------------------- Borzoi output span / target length
def test_borzoi_output_span_and_target_length(golden_dir):
    model = _model(golden_dir, "segment_borzoi_tiny")
    assert model.output_span(512) == (128, 384)  # golden: central 256 of 512
    assert model.output_span(1024) == (384, 640)  # fixed target: more context, same span size
    seqs, d = _case(golden_dir, "segment_borzoi_tiny")
    pad = "N" * 256
    longer = model.predict([pad + s + pad for s in seqs])
    assert longer.shape == d["probabilities"].shape

    smaller = load_model(golden_dir / "segment_borzoi_tiny", target_length=16)
    assert smaller.output_span(512) == (192, 320)
    assert smaller.predict(seqs).shape == (2, 128, 14)
    full = load_model(golden_dir / "segment_borzoi_tiny", target_length=-1)
    assert full.output_span(512) == (0, 512)
    assert full.predict(seqs).shape == (2, 512, 14)
    assert full.check_length(32) is None


def test_borzoi_short_window_needs_explicit_target(golden_dir):
    with pytest.raises(ValueError, match=r"shorter than the 256 central bases .* target_length=4 keeps"):
        load_model(golden_dir / "segment_borzoi_tiny", window_length=128)
    model = load_model(golden_dir / "segment_borzoi_tiny", window_length=128, target_length=8)
    assert model.output_span(128) == (32, 96)
    assert sb.proportional_target_length(sb.DEFAULT_WINDOW) == sb.DEFAULT_TARGET_LENGTH
    assert sb.proportional_target_length(262_144) == 3072
    assert sb.proportional_target_length(131_072) == 1536


# ------------------------------------------------------------- building blocks
def test_relative_shift_matches_definition():
    n = 5
    rel = np.random.default_rng(0).standard_normal((2, 3, n, 2 * n - 1)).astype(np.float32)
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    expected = rel[..., i, j - i + n - 1]
    np.testing.assert_array_equal(np.asarray(shift_relative(jnp.asarray(rel))), expected)


def test_published_tower_widths():
    assert se.EnformerConfig().conv_widths() == [768, 768, 896, 1024, 1152, 1280, 1536]
    assert sb.BorzoiConfig().conv_widths() == [512, 608, 736, 896, 1056, 1280, 1536]


@pytest.mark.parametrize("mod,cfg,window", [(se, se.EnformerConfig(), se.DEFAULT_WINDOW),
                                            (sb, sb.BorzoiConfig(), sb.DEFAULT_WINDOW)])
def test_published_configs_build(mod, cfg, window):
    """The default (published) configurations trace at their default window; module
    names follow the same pattern as the tiny checkpoints."""
    params, state = expected_shapes(mod.build_forward(cfg, jnp.float32), window)
    assert any(k.startswith(f"{mod.TRUNK}/~_transformer_attention/layer_{cfg.num_transformer_layers - 1}/")
               for k in params)
    assert all(k.endswith(("mean_ema", "var_ema")) for k in state)


@pytest.mark.parametrize("name,mod,cls,length", [("segment_enformer_tiny", se, se.EnformerConfig, 256),
                                                 ("segment_borzoi_tiny", sb, sb.BorzoiConfig, 512)])
def test_random_params_roundtrip(golden_dir, name, mod, cls, length):
    cfg = read_config(str(golden_dir / name), cls, name)
    params, state = mod.random_params(cfg)
    model = mod.build_model(cfg, params, state)
    out = model.predict("ACGT" * (length // 4))
    assert out.shape == (1, model.output_span(length)[1] - model.output_span(length)[0], 14)
    assert np.isfinite(out).all()
