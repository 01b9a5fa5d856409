"""The genome engine with the real SegmentEnformer / SegmentBorzoi modules (golden tiny
checkpoints): N-accepting layout, Borzoi's central output span, chunking invariance."""

import numpy as np
import pyarrow.dataset as ds
import pytest

from genoseg.cli import main

CASES = [("segment_enformer_tiny", "segment_enformer", "256"),
         ("segment_borzoi_tiny", "segment_borzoi", "512")]


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    rng = np.random.default_rng(3)
    seq = "".join(rng.choice(list("ACGT"), 3000))
    # leading Ns, an N gap, soft-masked stretch, an IUPAC code, and a short second contig
    c1 = "NNNN" + seq[:1000] + "N" * 300 + seq[1000:2000].lower() + "R" + seq[2000:]
    c2 = seq[:700]
    path = tmp_path_factory.mktemp("g") / "g.fa"
    path.write_text(f">c1\n{c1}\n>c2\n{c2}\n")
    return path, {"c1": len(c1), "c2": len(c2)}


def _run(tmp_path, fasta, golden_dir, name, window, per_chunk):
    out = tmp_path / f"{name}_{per_chunk}"
    assert main(["annotate", "--fasta", str(fasta), "--model", str(golden_dir / name), "--window-length", window,
                 "--windows-per-chunk", per_chunk, "--contigs", "c1,c2", "--outdir", str(out)]) == 0
    return out


@pytest.mark.parametrize("name,backbone,window", CASES)
def test_every_base_predicted_and_chunking_invariant(tmp_path, golden_dir, genome, name, backbone, window):
    fasta, lengths = genome
    a = _run(tmp_path, fasta, golden_dir, name, window, "2")
    b = _run(tmp_path, fasta, golden_dir, name, window, "100")
    tables = []
    for out in (a, b):
        t = ds.dataset(str(out / backbone / "predictions")).to_table()
        tables.append(t.sort_by([("chrom", "ascending"), ("pos", "ascending")]))
    assert tables[0].equals(tables[1])
    df = tables[0].to_pandas()
    for contig, n in lengths.items():
        pos = df.loc[df["chrom"] == contig, "pos"].to_numpy()
        np.testing.assert_array_equal(pos, np.arange(n))  # N bases and contig ends included


def test_borzoi_values_are_the_central_output_of_the_padded_window(tmp_path, golden_dir):
    from genoseg import store
    from genoseg.models import load_model

    model = load_model(golden_dir / "segment_borzoi_tiny")
    start, end = model.output_span(512)
    span = end - start  # 256: a contig of exactly one output span needs one window
    rng = np.random.default_rng(5)
    seq = "".join(rng.choice(list("ACGT"), span))
    fasta = tmp_path / "one.fa"
    fasta.write_text(f">one\n{seq}\n")
    out = tmp_path / "out"
    assert main(["annotate", "--fasta", str(fasta), "--model", str(golden_dir / "segment_borzoi_tiny"),
                 "--window-length", "512", "--contigs", "one", "--outdir", str(out)]) == 0
    pos, probs = next(store.iter_predictions(str(out / "segment_borzoi" / "predictions"), "one"))
    np.testing.assert_array_equal(pos, np.arange(span))
    expected = model.predict("N" * start + seq + "N" * (512 - end))[0]
    features = store.read_metadata(str(out / "segment_borzoi" / "predictions"))["features"]
    order = [model.features.index(f) for f in features]
    np.testing.assert_array_equal(probs, store.dequantize(store.quantize(expected[:, order])))
