"""Safe loading of checkpoints: the published joblib pickles, and their safetensors copies.

The published weights are pickles: a plain ``pickle.load`` would run whatever callable
the file names. :func:`safe_load` unpickles with an allow-list instead. Only the globals
needed to rebuild numpy arrays (joblib's array wrapper, numpy's array reconstructor,
JAX's array reconstructor) and plain containers are resolved; any other global is
refused with a :class:`~genoseg.errors.CheckpointError` naming it, before anything is
called. JAX arrays come back as numpy arrays: placing them on a device is the model's
job, not the loader's.

:func:`save_tree` / :func:`load_tree` store the same ``{module: {param: array}}`` trees
as safetensors (no pickle, memory-mapped reading): tensor ``"{module}/{param}"``
(haiku parameter names never contain ``/``), raw little-endian bytes, so a tree read
back is bit-identical to the one written. :func:`read_model_tree` picks the format of a
model directory (see :mod:`genoseg.convert`).
"""

from __future__ import annotations

import bz2
import collections
import gzip
import io
import lzma
import os
import pickle
import zlib
from typing import Any, BinaryIO

import numpy as np

from .errors import CheckpointError

__all__ = ["safe_load", "load_params_tree", "save_tree", "load_tree", "tree_modules", "read_model_tree"]

# joblib reads array payloads in chunks of this many bytes.
_CHUNK = 16 * 1024 * 1024


class _JoblibArray:
    """Stand-in for ``joblib.numpy_pickle.NumpyArrayWrapper``.

    joblib pickles the array's metadata (dtype, shape, order) as this object and writes
    the raw bytes right after it in the stream; :meth:`_SafeUnpickler.load_build`
    reads them once the metadata is known.
    """

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


def _numpy_reconstruct(subtype, shape, dtype_code):
    if subtype is not np.ndarray:
        raise CheckpointError(f"refusing to rebuild array subclass {subtype!r}")
    return np.ndarray.__new__(np.ndarray, shape, dtype_code)


def _jax_reconstruct(fun, args, arr_state, aval_state):
    """Replacement for ``jax._src.array._reconstruct_array`` that returns numpy."""
    if fun is not _numpy_reconstruct:
        raise CheckpointError("JAX array record does not use numpy's reconstructor")
    arr = fun(*args)
    _check_array_state(arr_state)
    arr.__setstate__(arr_state)
    return arr


def _check_array_state(state) -> None:
    # ndarray state: (version, shape, dtype, is_fortran, raw bytes or object list)
    if not isinstance(state, tuple) or len(state) != 5:
        raise CheckpointError("malformed array record in checkpoint")
    dtype = state[2]
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise CheckpointError(f"refusing array of dtype {dtype!r}: only numeric arrays are allowed")


_ALLOWED = {
    ("joblib.numpy_pickle", "NumpyArrayWrapper"): _JoblibArray,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy.core.multiarray", "scalar"): None,  # filled below
    ("numpy._core.multiarray", "scalar"): None,
    ("jax._src.array", "_reconstruct_array"): _jax_reconstruct,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


def _numpy_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise CheckpointError("refusing non-numeric numpy scalar in checkpoint")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _latin1_bytes(text, encoding="latin1"):
    """Protocol-2 pickles store bytes as ``_codecs.encode(str, 'latin1')``."""
    if not isinstance(text, str) or encoding != "latin1":
        raise CheckpointError("refusing _codecs.encode call other than latin1 bytes")
    return text.encode("latin1")


_ALLOWED[("_codecs", "encode")] = _latin1_bytes
_ALLOWED[("numpy.core.multiarray", "scalar")] = _numpy_scalar
_ALLOWED[("numpy._core.multiarray", "scalar")] = _numpy_scalar


class _SafeUnpickler(pickle._Unpickler):  # pure-Python unpickler: BUILD can be hooked
    def __init__(self, fh: BinaryIO, source: str):
        super().__init__(fh)
        self._fh = fh
        self._source = source
        self.dispatch = dict(pickle._Unpickler.dispatch)
        self.dispatch[pickle.BUILD[0]] = _SafeUnpickler.load_build
        self.dispatch[pickle.REDUCE[0]] = _SafeUnpickler.load_reduce

    def find_class(self, module: str, name: str) -> Any:
        target = _ALLOWED.get((module, name))
        if target is None:
            raise CheckpointError(
                f"{self._source}: refusing to load global '{module}.{name}': checkpoints may "
                "only contain numeric arrays and plain containers (the file may be "
                "corrupt or malicious)"
            )
        return target

    def load_reduce(self):
        args = self.stack.pop()
        func = self.stack[-1]
        allowed = set(_ALLOWED.values()) - {np.ndarray}
        if func not in allowed and func is not np.dtype:
            raise CheckpointError(f"{self._source}: refusing to call {func!r} while loading")
        self.stack[-1] = func(*args)

    def load_build(self):
        state = self.stack.pop()
        obj = self.stack[-1]
        if isinstance(obj, np.ndarray):
            _check_array_state(state)
            obj.__setstate__(state)
        elif isinstance(obj, np.dtype):
            obj.__setstate__(state)
        elif isinstance(obj, _JoblibArray):
            obj.__setstate__(state)
            self.stack[-1] = self._read_joblib_array(obj)
        else:
            raise CheckpointError(
                f"{self._source}: refusing to set state of {type(obj).__name__} object"
            )

    def _read_joblib_array(self, w: _JoblibArray) -> np.ndarray:
        dtype = getattr(w, "dtype", None)
        if not isinstance(dtype, np.dtype) or dtype.hasobject:
            raise CheckpointError(f"{self._source}: refusing joblib array of dtype {dtype!r}")
        if getattr(w, "subclass", np.ndarray) is not np.ndarray:
            raise CheckpointError(f"{self._source}: refusing array subclass {w.subclass!r}")
        if getattr(w, "numpy_array_alignment_bytes", None) is not None:
            pad = self._fh.read(1)
            if pad and pad[0]:
                self._fh.read(pad[0])
        shape = tuple(int(s) for s in w.shape)
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        nbytes = count * dtype.itemsize
        buf = bytearray(nbytes)
        view = memoryview(buf)
        got = 0
        while got < nbytes:
            n = self._fh.readinto(view[got : got + _CHUNK])
            if not n:
                raise CheckpointError(f"{self._source}: file ends inside an array (truncated?)")
            got += n
        arr = np.frombuffer(buf, dtype=dtype, count=count)
        if getattr(w, "order", "C") == "F":
            arr = arr.reshape(shape[::-1]).transpose()
        else:
            arr = arr.reshape(shape)
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        return arr


def _open_maybe_compressed(path: str) -> BinaryIO:
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.open(path, "rb")
    if magic.startswith(b"BZh"):
        return bz2.open(path, "rb")
    if magic.startswith(b"\xfd7zXZ"):
        return lzma.open(path, "rb")
    if magic[:1] == b"\x78" and magic[1:2] in (b"\x01", b"\x5e", b"\x9c", b"\xda"):
        # joblib's 'zlib' compressor: one raw zlib stream
        with open(path, "rb") as fh:
            return io.BytesIO(zlib.decompress(fh.read()))
    return open(path, "rb")


def safe_load(path: str | os.PathLike) -> Any:
    """Unpickle a (joblib) checkpoint without executing code from the file.

    Args:
        path: pickle or joblib file, optionally gzip/bz2/xz/zlib compressed.

    Returns:
        The unpickled object, with every array as a ``numpy.ndarray``.

    Raises:
        CheckpointError: the file is missing, truncated, or names a global outside the
            allow-list (the message names the global).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint file not found: {path}")
    try:
        with _open_maybe_compressed(path) as fh:
            return _SafeUnpickler(fh, path).load()
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, OSError, zlib.error) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from exc


def load_params_tree(path: str | os.PathLike) -> dict[str, dict[str, np.ndarray]]:
    """Load a ``{module_name: {param_name: array}}`` checkpoint and check its shape."""
    tree = safe_load(path)
    if not isinstance(tree, dict) or not all(
        isinstance(v, dict) and all(isinstance(a, np.ndarray) for a in v.values())
        for v in tree.values()
    ):
        raise CheckpointError(
            f"{os.fspath(path)}: expected a dict of modules to dicts of arrays, as in the "
            "published jax_model/ files"
        )
    return tree


# ------------------------------------------------------------- safetensors
#: dtypes safetensors' numpy API stores and reads back unchanged.
_SAFETENSORS_DTYPES = frozenset(np.dtype(t) for t in (
    np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8,
    np.uint64, np.uint32, np.uint16, np.uint8, np.bool_))


def save_tree(tree: dict[str, dict[str, np.ndarray]], path: str | os.PathLike) -> None:
    """Write a ``{module: {param: array}}`` tree as one safetensors file.

    Raises:
        CheckpointError: a parameter name contains ``/`` or an array has a dtype
            safetensors' numpy API cannot store (the message names the tensor).
    """
    from safetensors.numpy import save_file

    flat = {}
    for module, leaves in tree.items():
        for name, arr in leaves.items():
            key = f"{module}/{name}"
            arr = np.asarray(arr)
            if "/" in name or not module:
                raise CheckpointError(f"cannot convert tensor {key!r}: expected module/param names")
            if arr.dtype not in _SAFETENSORS_DTYPES:
                raise CheckpointError(f"cannot convert tensor {key!r}: dtype {arr.dtype} is not supported")
            flat[key] = arr if arr.flags.c_contiguous else arr.copy(order="C")  # keeps 0-d shapes
    save_file(flat, os.fspath(path), metadata={"layout": "genoseg {module}/{param}"})
    umask = os.umask(0)  # the library creates the file private (0600): give it the usual mode
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


#: safetensors dtype codes -> numpy (the format is little-endian).
_ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
              "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}


def load_tree(path: str | os.PathLike) -> dict[str, dict[str, np.ndarray]]:
    """Read a tree written by :func:`save_tree`; nothing is executed.

    The safetensors library validates the file (header, dtypes, shapes, offsets); the
    arrays are then read-only views of the memory-mapped file: nothing is copied until
    the arrays go to the device (safetensors' own numpy reader copies every tensor, a
    second 2 GB copy for the published SegmentNT).
    """
    import json
    import math
    import mmap
    import struct

    from safetensors import SafetensorError, safe_open

    path = os.fspath(path)
    try:
        with safe_open(path, framework="np") as fh:
            specs = {k: (fh.get_slice(k).get_dtype(), tuple(fh.get_slice(k).get_shape())) for k in fh.keys()}
        with open(path, "rb") as f:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        (n,) = struct.unpack_from("<Q", mm, 0)
        header = json.loads(bytes(mm[8:8 + n]))
    except (SafetensorError, OSError, ValueError, struct.error) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc
    tree: dict[str, dict[str, np.ndarray]] = {}
    for key, (code, shape) in specs.items():
        module, name = _split_key(key, path)
        if code not in _ST_DTYPES:
            raise CheckpointError(f"{path}: tensor {key!r} has unsupported dtype {code}")
        dtype = np.dtype(_ST_DTYPES[code])
        begin, end = header[key]["data_offsets"]
        count = math.prod(shape)
        if end - begin != count * dtype.itemsize:
            raise CheckpointError(f"{path}: tensor {key!r}: {end - begin} bytes for shape {list(shape)} {code}")
        arr = np.frombuffer(mm, dtype=dtype, count=count, offset=8 + n + begin) if count else np.empty(0, dtype)
        tree.setdefault(module, {})[name] = arr.reshape(shape)
    return tree


def tree_modules(path: str | os.PathLike) -> set[str]:
    """Module names of a checkpoint file without reading its arrays where the format
    allows it (safetensors); joblib files are loaded (restricted unpickler)."""
    path = os.fspath(path)
    if not path.endswith(".safetensors"):
        return set(load_params_tree(path))
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="np") as fh:
            return {_split_key(k, path)[0] for k in fh.keys()}
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc


def _split_key(key: str, path: str) -> tuple[str, str]:
    module, sep, name = key.rpartition("/")
    if not sep or not module or not name:
        raise CheckpointError(f"{path}: tensor {key!r} is not named module/param")
    return module, name


def read_model_tree(model_dir: str | os.PathLike, stem: str) -> dict[str, dict[str, np.ndarray]]:
    """The tree ``jax_model/<stem>`` of a model directory.

    A converted directory (``convert.json``, see :mod:`genoseg.convert`) is read from
    ``<stem>.safetensors`` only: no pickle is opened there even when the joblib file
    sits beside it. Otherwise ``<stem>.joblib`` goes through the restricted unpickler.
    Checksums are verified by :func:`genoseg.convert.verify_converted` (``load_model``
    does that before reading).
    """
    from .convert import RECORD

    model_dir = os.fspath(model_dir)
    st = os.path.join(model_dir, "jax_model", f"{stem}.safetensors")
    if os.path.isfile(os.path.join(model_dir, RECORD)):
        if not os.path.isfile(st):
            raise CheckpointError(f"{st} not found although {RECORD} says the directory is converted: "
                                  "re-run genoseg convert-model")
        return load_tree(st)
    if os.path.isfile(st):
        raise CheckpointError(f"{st} has no {RECORD} beside it, so its checksum cannot be verified: "
                              "convert with genoseg convert-model (or remove the file to use the joblib one)")
    path = os.path.join(model_dir, "jax_model", f"{stem}.joblib")
    if not os.path.isfile(path):
        raise CheckpointError(f"{path} not found: expected the published jax_model/ layout (SegmentNT: "
                              "hyperparams.json + pytree_ckpt.joblib; SegmentEnformer/SegmentBorzoi: "
                              "params.joblib + state.joblib)")
    return load_params_tree(path)
