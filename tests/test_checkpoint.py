"""Checkpoints are pickles: loading must never run code named by the file."""

import os
import pickle

import joblib
import numpy as np
import pytest

from genoseg.checkpoint import load_params_tree, safe_load
from genoseg.errors import CheckpointError


class _RunsCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _EvalCall:
    def __reduce__(self):
        return (eval, ("1+1",))


def test_golden_checkpoints_match_joblib(golden_dir):
    for path in sorted(golden_dir.glob("*/jax_model/*.joblib")):
        ours, ref = load_params_tree(path), joblib.load(path)
        assert ours.keys() == ref.keys()
        for mod in ours:
            for name, arr in ours[mod].items():
                assert isinstance(arr, np.ndarray)
                np.testing.assert_array_equal(arr, np.asarray(ref[mod][name]))


@pytest.mark.parametrize("dump", [pickle.dump, joblib.dump])
def test_os_system_is_refused_and_not_run(tmp_path, dump):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.joblib"
    payload = {"mod": {"w": np.ones(3, np.float32), "x": _RunsCommand(marker)}}
    if dump is joblib.dump:
        joblib.dump(payload, path)
    else:
        with open(path, "wb") as fh:
            pickle.dump(payload, fh)
    with pytest.raises(CheckpointError, match=r"refusing to load global '(posix|os)\.system'"):
        safe_load(path)
    assert not marker.exists()


def test_builtins_eval_is_refused(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps([_EvalCall()]))
    with pytest.raises(CheckpointError, match=r"builtins\.eval"):
        safe_load(path)


def test_object_arrays_are_refused(tmp_path):
    path = tmp_path / "obj.joblib"
    joblib.dump({"m": {"w": np.array([1, "a"], dtype=object)}}, path)
    with pytest.raises(CheckpointError, match="dtype"):
        safe_load(path)


def test_compressed_and_plain_numpy_round_trip(tmp_path):
    tree = {"m/~/lin": {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.zeros(4, np.float64)},
            "f": {"w": np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3))}}
    for i, kw in enumerate([{}, {"compress": 3}, {"compress": ("gzip", 3)}]):
        path = tmp_path / f"t{i}.joblib"
        joblib.dump(tree, path, **kw)
        got = load_params_tree(path)
        for mod in tree:
            for name in tree[mod]:
                np.testing.assert_array_equal(got[mod][name], tree[mod][name])
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps(tree, protocol=2))
    np.testing.assert_array_equal(load_params_tree(path)["m/~/lin"]["w"], tree["m/~/lin"]["w"])


def test_truncated_and_wrong_structure(tmp_path):
    good = tmp_path / "g.joblib"
    joblib.dump({"m": {"w": np.ones(1000, np.float32)}}, good)
    bad = tmp_path / "t.joblib"
    bad.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=str(bad)):
        safe_load(bad)
    lst = tmp_path / "l.pkl"
    lst.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(CheckpointError, match="expected a dict"):
        load_params_tree(lst)
    with pytest.raises(CheckpointError, match="not found"):
        safe_load(tmp_path / "missing.joblib")
