"""SegmentNT against the authors' golden outputs, input validation, dtypes, attention paths."""

import json

import numpy as np
import pytest

from genoseg.errors import CheckpointError
from genoseg.models import load_model
from genoseg.models.segment_nt import (
    TRAINING_WINDOW,
    inverse_frequencies,
    rescaling_factor_for_length,
    tokenize,
)

CASES = [("segment_nt_tiny", "L96"), ("segment_nt_tiny", "L192"), ("segment_nt_tiny_rescaled", "L96")]
# bfloat16 vs the float32 golden: measured max |dp| 6.0e-3, mean 7.7e-4 (README); bar with margin.
BF16_ATOL = 1.5e-2


def _model(golden_dir, name, **kw):
    g = json.loads((golden_dir / name / "golden.json").read_text())
    return load_model(golden_dir / name, rescaling_factor=g["inference_rescaling_factor"], **kw)


def _case(golden_dir, name, case):
    d = np.load(golden_dir / name / f"case_{case}.npz")
    return [str(s) for s in d["sequences"]], d


@pytest.mark.parametrize("name,case", CASES)
def test_golden_tokens_and_probabilities(golden_dir, name, case):
    model = _model(golden_dir, name)
    seqs, d = _case(golden_dir, name, case)
    np.testing.assert_array_equal(model.tokenize(seqs), d["tokens"])
    probs = model.predict(seqs)
    assert probs.dtype == np.float32 and probs.shape == d["probabilities"].shape
    rel = np.abs(probs - d["probabilities"]) / np.maximum(np.abs(d["probabilities"]), 1e-6)
    assert rel.max() < 1e-4
    logits = model.logits(seqs)
    np.testing.assert_allclose(logits, d["logits"], rtol=1e-4, atol=1e-5)


def test_rescaling_factor_changes_output(golden_dir):
    """The rescaled golden case must fail with the training factor: the override is used."""
    seqs, d = _case(golden_dir, "segment_nt_tiny_rescaled", "L96")
    default = load_model(golden_dir / "segment_nt_tiny_rescaled").predict(seqs)
    assert np.abs(default - d["probabilities"]).max() > 1e-4


def test_rescaling_convention():
    assert rescaling_factor_for_length(TRAINING_WINDOW) == pytest.approx(5000 / 2048)
    assert rescaling_factor_for_length(40_008) == pytest.approx(6669 / 2048)  # authors: CLS counted
    # NTK-style base change: factor 1 is the plain RoPE base
    np.testing.assert_allclose(inverse_frequencies(8, 1.0), inverse_frequencies(8, None))
    assert inverse_frequencies(8, 3.0)[1] < inverse_frequencies(8, None)[1]


def test_lower_case_is_sequence(golden_dir):
    model = _model(golden_dir, "segment_nt_tiny")
    seqs, _ = _case(golden_dir, "segment_nt_tiny", "L96")
    np.testing.assert_array_equal(model.predict([s.lower() for s in seqs]), model.predict(seqs))


@pytest.mark.parametrize(
    "seq,pattern",
    [
        ("ACGTN" + "A" * 91, r"position 4: 'N' is an ambiguous IUPAC base"),
        ("A" * 50 + "R" + "A" * 45, r"position 50: 'R' is an ambiguous IUPAC base"),
        ("A" * 10 + "-" + "A" * 85, r"position 10: '-' is not a base"),
        ("A" * 95 + "é", r"position 95: 'é' is not a base"),
        ("A" * 100, r"multiple of 24 bases, got 100"),
        ("", r"sequence 0 is empty"),
    ],
)
def test_predict_refuses_bad_input(golden_dir, seq, pattern):
    model = _model(golden_dir, "segment_nt_tiny")
    with pytest.raises(ValueError, match=pattern):
        model.predict(seq)


def test_predict_refuses_empty_and_ragged_batches(golden_dir):
    model = _model(golden_dir, "segment_nt_tiny")
    with pytest.raises(ValueError, match="no sequences"):
        model.predict([])
    with pytest.raises(ValueError, match="one length"):
        model.predict(["A" * 96, "A" * 192])
    with pytest.raises(ValueError, match=r"sequence 1, position 3"):
        model.predict(["A" * 96, "AAAN" + "A" * 92])


def test_tokenizer_matches_vocabulary_order():
    # ids: 6 special tokens, then 6-mers in product('ATCG') order
    assert tokenize(["AAAAAA"]).tolist() == [[3, 6]]
    assert tokenize(["AAAAAT"]).tolist() == [[3, 7]]
    assert tokenize(["TAAAAA"]).tolist() == [[3, 6 + 4**5]]
    assert tokenize(["GGGGGG"]).tolist() == [[3, 6 + 4**6 - 1]]


def test_bfloat16_close_to_float32(golden_dir):
    seqs, d = _case(golden_dir, "segment_nt_tiny", "L192")
    bf16 = _model(golden_dir, "segment_nt_tiny", compute_dtype="bfloat16")
    p = bf16.predict(seqs)
    assert p.dtype == np.float32
    err = np.abs(p - d["probabilities"]).max()
    assert 0 < err < BF16_ATOL  # > 0: the bf16 path really runs in bf16


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_attention_paths_agree(golden_dir, dtype):
    seqs, _ = _case(golden_dir, "segment_nt_tiny", "L192")
    a = _model(golden_dir, "segment_nt_tiny", compute_dtype=dtype, attention="einsum").predict(seqs)
    b = _model(golden_dir, "segment_nt_tiny", compute_dtype=dtype, attention="dot_product").predict(seqs)
    np.testing.assert_allclose(a, b, atol=1e-5 if dtype == "float32" else 1e-2)


def test_unknown_options_are_refused(golden_dir):
    with pytest.raises(ValueError, match="compute_dtype"):
        _model(golden_dir, "segment_nt_tiny", compute_dtype="float16x")
    with pytest.raises(ValueError, match="attention"):
        _model(golden_dir, "segment_nt_tiny", attention="flash")
    with pytest.raises(ValueError, match="unknown backbone"):
        load_model(golden_dir / "segment_nt_tiny", backbone="segment_xyz")


def test_model_attributes(golden_dir):
    model = _model(golden_dir, "segment_nt_tiny")
    assert model.backbone == "segment_nt"
    assert model.features[2] == "exon" and len(model.features) == 14
    assert model.window_length == TRAINING_WINDOW
    assert model.output_span(96) == (0, 96)


def test_multi_species_through_same_loader(golden_dir, tmp_path):
    import shutil

    d = tmp_path / "segment_nt_multi_species"
    shutil.copytree(golden_dir / "segment_nt_tiny", d)
    model = load_model(d)
    assert model.backbone == "segment_nt_multi_species"
    seqs, ref = _case(golden_dir, "segment_nt_tiny", "L96")
    np.testing.assert_allclose(model.predict(seqs), ref["probabilities"], atol=1e-5)


def test_missing_or_mismatched_files(golden_dir, tmp_path):
    import shutil

    d = tmp_path / "m"
    shutil.copytree(golden_dir / "segment_nt_tiny", d)
    (d / "jax_model" / "pytree_ckpt.joblib").unlink()
    with pytest.raises(CheckpointError, match="pytree_ckpt.joblib"):
        load_model(d, backbone="segment_nt")
    shutil.rmtree(d)
    shutil.copytree(golden_dir / "segment_nt_tiny", d)
    hp = json.loads((d / "jax_model" / "hyperparams.json").read_text())
    hp["embed_dim"] = 64
    (d / "jax_model" / "hyperparams.json").write_text(json.dumps(hp))
    with pytest.raises(CheckpointError, match=r"shape .* imply"):
        load_model(d)
    with pytest.raises(CheckpointError, match="model directory not found"):
        load_model(tmp_path / "nope")
