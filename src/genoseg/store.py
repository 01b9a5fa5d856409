"""The predictions store: Parquet files of 8-bit codes plus a JSON index (layout 2).

Layout::

    OUTDIR/<backbone>/predictions/
        _genoseg.json            metadata + index (below)
        part-00000.parquet       one file per predict chunk, in chunk order: the file
        part-00001.parquet ...   ``genoseg predict`` wrote, linked or copied in unchanged
                                 by ``genoseg collect`` (Parquet is encoded once)

No contig name is ever part of a path, so any FASTA name works (``1``, ``01``, ``a/b``,
300 bytes, non-ASCII) and 10^5 scaffolds do not make 10^5 files: the number of files
is the number of chunks, which the plan sizes by work.

Columns (all non-null, zstd): ``chrom`` (string, Parquet dictionary-encoded: exactly
the FASTA name, read back as a string by pyarrow, DuckDB and polars whatever it looks
like), ``pos`` (int64, 0-based position in the contig; DELTA_BINARY_PACKED), then one
``uint8`` column per feature named exactly as the model names it (dictionary-encoded).
Rows are ordered by contig (FASTA order), then ``pos``; bases without a prediction
have no row. A contig may continue from one file into the next (chunk boundaries).

Row groups hold at most :data:`ROW_GROUP` rows. A contig boundary closes the current
row group once it holds :data:`SHARED_ROWS` rows, so a large contig gets row groups of
its own (min/max statistics on ``chrom`` and ``pos`` let DuckDB, polars and pyarrow
filters skip the others) while small scaffolds share row groups (10^5 scaffolds of a
few kb make a few hundred row groups, not 10^5).

Value encoding (``"encoding": "uint8_linear"``): a probability ``p`` is stored as
``q = round(p * 255)`` (round half to even, ``p`` clipped to [0, 1]) and decoded as
``q / 255``; the error is at most 1/510.

Metadata. Every file's footer carries the key-value key ``genoseg`` (JSON, written
when the file is closed complete): ``encoding``, ``scale``, ``decode``, ``features``,
``backbone``, ``version``, ``layout``, ``plan_id``, ``chunk``, ``reverse_complement``,
``compute_dtype``, ``device`` (the model's device, e.g. ``cuda:0``, when known),
``complete``, ``rows``, ``row_groups`` and ``index``: per contig in
the file (columns of equal length) ``contig``, ``rows``, ``row_group`` (first row
group), ``offset`` (its first row within that row group), ``first_pos``, ``last_pos``.
``_genoseg.json`` holds the same settings plus ``devices`` (the distinct ``device``
strings of the chunk footers, e.g. ``["cuda:0"]``, in chunk order; empty when the model
recorded none), ``contigs`` (FASTA order), ``rows``
(contig -> rows), ``files`` and the dataset ``index`` (one entry per contig piece in a
file: ``contig`` (index into ``contigs``), ``file`` (index into ``files``),
``row_group``, ``offset``, ``rows``, ``first_pos``, ``last_pos``), a ``plan`` summary
and ``skipped_regions``. genoseg's readers use the index: reading one contig opens only
its file(s) and row groups, and reading contig after contig decodes each shared row
group once.

Reading outside genoseg (the leading underscore keeps ``_genoseg.json`` out of
datasets)::

    pyarrow.dataset.dataset(DIR).to_table(filter=pyarrow.dataset.field("chrom") == "1")
    duckdb.sql("SELECT * FROM read_parquet('DIR/*.parquet') WHERE chrom = '1'")
    polars.scan_parquet("DIR/*.parquet").filter(polars.col("chrom") == "1")
"""

from __future__ import annotations

import collections
import json
import logging
import os
import shutil
import threading
from typing import Iterable, Iterator, Mapping, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import GenosegError
from .outputs import backbone_dir

log = logging.getLogger(__name__)

ENCODING = "uint8_linear"
SCALE = 255
LAYOUT = "genoseg-predictions/2"
META_KEY = b"genoseg"
META_FILE = "_genoseg.json"
ROW_GROUP = 1 << 20  # most rows in one Parquet row group
SHARED_ROWS = ROW_GROUP // 4  # a contig boundary closes a row group holding this many rows
#: settings every chunk file of a dataset must share
SETTINGS = ("layout", "encoding", "scale", "features", "backbone", "reverse_complement", "compute_dtype")
_INDEX_KEYS = ("contig", "rows", "row_group", "offset", "first_pos", "last_pos")


def quantize(p: np.ndarray) -> np.ndarray:
    """Probabilities (any float array) -> ``uint8`` codes ``round(p * 255)``."""
    q = np.clip(p, 0.0, 1.0)  # one temporary, scaled and rounded in place
    q *= SCALE
    return np.rint(q, out=q).astype(np.uint8)


def dequantize(q: np.ndarray) -> np.ndarray:
    """``uint8`` codes -> ``float32`` probabilities ``q / 255`` (same memory order)."""
    return q.astype(np.float32) / np.float32(SCALE)


def dataset_dir(outdir: str, backbone: str) -> str:
    """``OUTDIR/<backbone>/predictions``."""
    return os.path.join(backbone_dir(outdir, backbone), "predictions")


def base_metadata(features: list[str], backbone: str, **extra) -> dict:
    from . import __version__

    return {"encoding": ENCODING, "scale": SCALE, "decode": "p = q / 255", "features": list(features),
            "backbone": backbone, "version": __version__, "coordinates": "0-based", "layout": LAYOUT, **extra}


def _schema(features: Sequence[str]) -> pa.Schema:
    # ``chrom`` is written from dictionary arrays (no string per row in memory); files
    # are written without the Arrow schema, so readers see the Parquet type: a string.
    return pa.schema([pa.field("chrom", pa.dictionary(pa.int32(), pa.string()), nullable=False),
                      pa.field("pos", pa.int64(), nullable=False)]
                     + [pa.field(f, pa.uint8(), nullable=False) for f in features])


# ----------------------------------------------------------------------------- write
class PredictionWriter:
    """Stream one contig after another into one Parquet file (a chunk file).

    ``write(pos, codes, chrom=name)`` appends rows of ``chrom``: ``pos`` int64 ``[n]``
    (increasing, continuing the contig's previous rows), ``codes`` uint8 ``[n, F]`` in
    ``features`` order (C or Fortran order). Contigs come in dataset (FASTA) order: a
    contig cannot come back once another one has started. ``close()`` writes the footer
    with ``meta`` (normally :func:`base_metadata` plus ``plan_id``, ``chunk`` ...), the
    per-contig index and ``complete: true``; as a context manager, an exception closes
    the file without marking it complete. Memory: one row group (~22 MB for 14 features).

    ``with_chrom`` is accepted for compatibility and must be true: every file of the
    store has a ``chrom`` column.
    """

    def __init__(self, path: str, features: Sequence[str], meta: dict, with_chrom: bool = True,
                 row_group_rows: int = ROW_GROUP):
        if not with_chrom:
            raise ValueError("PredictionWriter: every predictions file has a chrom column")
        self.path = path
        self.features = list(features)
        self.meta = dict(meta)
        self.schema = _schema(self.features)
        self.rows = 0
        self.row_groups = 0
        self._cap = int(row_group_rows)
        self._shared = max(1, self._cap * SHARED_ROWS // ROW_GROUP)
        self._pos = np.empty(self._cap, np.int64)
        self._codes = np.empty((len(self.features), self._cap), np.uint8)  # feature-major
        self._n = 0  # rows buffered for the current row group
        self._runs: list[list] = []  # [contig number, rows] in the buffer
        self._index: list[list] = []  # per contig: name, rows, row_group, offset, first_pos, last_pos
        self._seen: set = set()
        self._closed = False
        self._w = pq.ParquetWriter(
            path, self.schema, compression="zstd", compression_level=3, store_schema=False,
            use_dictionary=["chrom"] + self.features, column_encoding={"pos": "DELTA_BINARY_PACKED"},
            write_statistics=["chrom", "pos"],
        )

    def write(self, pos: np.ndarray, codes: np.ndarray, chrom: Optional[str] = None) -> None:
        """Append rows of contig ``chrom`` (see the class docstring)."""
        pos = np.asarray(pos, np.int64)
        n = pos.size
        if n == 0:
            return
        codes = np.asarray(codes, np.uint8)
        if codes.shape != (n, len(self.features)):
            raise ValueError(f"codes of shape {codes.shape}, expected ({n}, {len(self.features)})")
        if chrom is None:
            raise ValueError("PredictionWriter.write needs the contig name (chrom=)")
        if n > 1 and not (pos[1:] > pos[:-1]).all():
            raise GenosegError(f"{self.path}: positions on {chrom!r} are not increasing")
        if self._index and chrom == self._index[-1][0]:
            if pos[0] <= self._index[-1][5]:
                raise GenosegError(f"{self.path}: positions on {chrom!r} are not increasing")
        else:
            if chrom in self._seen:
                raise GenosegError(f"{self.path}: contig {chrom!r} written again after other contigs")
            if self._n >= self._shared:
                self._flush()
            self._seen.add(chrom)
            self._index.append([chrom, 0, self.row_groups, self._n, int(pos[0]), 0])
        rec = self._index[-1]
        rec[1] += n
        rec[5] = int(pos[-1])
        i = 0
        while i < n:
            k = min(n - i, self._cap - self._n)
            self._pos[self._n:self._n + k] = pos[i:i + k]
            self._codes[:, self._n:self._n + k] = codes[i:i + k].T
            if self._runs and self._runs[-1][0] == len(self._index) - 1:
                self._runs[-1][1] += k
            else:
                self._runs.append([len(self._index) - 1, k])
            self._n += k
            i += k
            if self._n == self._cap:
                self._flush()

    def _flush(self) -> None:
        """Write the buffered rows as one row group."""
        n = self._n
        if n == 0:
            return
        ids = np.repeat(np.arange(len(self._runs), dtype=np.int32), [k for _, k in self._runs])
        names = pa.array([self._index[c][0] for c, _ in self._runs], pa.string())
        cols = [pa.DictionaryArray.from_arrays(pa.array(ids), names), pa.array(self._pos[:n])]
        cols += [pa.array(self._codes[j, :n]) for j in range(len(self.features))]
        self._w.write_batch(pa.RecordBatch.from_arrays(cols, schema=self.schema), row_group_size=n)
        self.rows += n
        self.row_groups += 1
        self._n = 0
        self._runs = []

    def footer_metadata(self) -> dict:
        cols = list(zip(*self._index)) if self._index else [()] * len(_INDEX_KEYS)
        return {**self.meta, "layout": LAYOUT, "complete": True, "rows": self.rows,
                "row_groups": self.row_groups, "index": {k: list(v) for k, v in zip(_INDEX_KEYS, cols)}}

    def close(self, complete: bool = True) -> None:
        """Flush, write the footer (``complete`` marks the file usable) and close."""
        if self._closed:
            return
        self._closed = True
        try:
            if complete:
                self._flush()
                self._w.add_key_value_metadata({META_KEY: json.dumps(self.footer_metadata())})
        finally:
            self._w.close()

    def __enter__(self) -> "PredictionWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(complete=exc_type is None)


def file_metadata(path: str) -> dict:
    """The ``genoseg`` footer metadata of one Parquet file (GenosegError if absent)."""
    m, _ = _footer(path)
    return m


def _footer(path: str) -> tuple[dict, "pq.FileMetaData"]:
    try:
        md = pq.read_metadata(path)
    except (OSError, pa.ArrowException) as exc:
        raise GenosegError(f"{path}: not a readable Parquet file ({exc})") from None
    kv = md.metadata or {}
    if META_KEY not in kv:
        raise GenosegError(f"{path}: incomplete, or not a genoseg predictions file (no 'genoseg' footer metadata)")
    try:
        return json.loads(kv[META_KEY]), md
    except ValueError:
        raise GenosegError(f"{path}: unreadable 'genoseg' footer metadata") from None


def chunk_file_ok(path: str, plan_id: str, chunk: int, **expect) -> bool:
    """True when ``path`` is a complete chunk file of chunk ``chunk`` of plan ``plan_id``
    (footer only, no data read); ``expect`` adds settings that must match, e.g.
    ``reverse_complement=True``. Used to reuse finished chunks when a run resumes."""
    try:
        m, md = _footer(path)
    except GenosegError:
        return False
    return (m.get("plan_id") == plan_id and m.get("chunk") == chunk and m.get("complete") is True
            and m.get("layout") == LAYOUT and m.get("rows") == md.num_rows
            and m.get("row_groups") == md.num_row_groups
            and all(m.get(k) == v for k, v in expect.items()))


# ---------------------------------------------------------------------------- collect
def write_dataset(dataset: str, plan: dict, chunk_files: Iterable[str], overwrite: bool = False) -> dict:
    """Make the dataset directory ``dataset`` (normally :func:`dataset_dir`) from the
    chunk files of ``plan`` (``genoseg collect``), atomically.

    Checks, from the files' footers only: every chunk of the plan exactly once, each
    complete and made from this plan (``plan_id``) with the same settings; contigs in
    plan order and rows per contig as the plan predicts. The files are then hard-linked
    (copied across file systems) unchanged to ``part-NNNNN.parquet``: no re-encoding.
    Returns the dataset metadata (also written to ``_genoseg.json``).
    """
    from .outputs import atomic_path

    chunks = _check_chunks(plan, chunk_files)
    meta = _dataset_metadata(plan, chunks)
    with atomic_path(dataset, overwrite=overwrite, is_dir=True) as tmp:
        for (path, _, _), name in zip(chunks, meta["files"]):
            _link_or_copy(path, os.path.join(tmp, name["path"]))
        with open(os.path.join(tmp, META_FILE), "w") as fh:
            json.dump(meta, fh, separators=(",", ":"))
    log.info("collect: %d files, %d contigs, %d rows -> %s", len(chunks), len(meta["contigs"]),
             sum(meta["rows"].values()), dataset)
    return meta


def _check_chunks(plan: dict, chunk_files: Iterable[str]) -> list[tuple[str, dict, "pq.FileMetaData"]]:
    """Footers of the chunk files in chunk order, verified against ``plan``."""
    by_index: dict[int, tuple] = {}
    first = None
    for f in map(os.fspath, chunk_files):
        m, md = _footer(f)
        if m.get("plan_id") != plan["plan_id"]:
            raise GenosegError(f"{f}: made from plan {m.get('plan_id')}, not from this plan ({plan['plan_id']})")
        if "chunk" not in m or m.get("layout") != LAYOUT:
            raise GenosegError(f"{f}: not a chunk file of this genoseg version; re-run genoseg predict")
        i = int(m["chunk"])
        if i in by_index:
            raise GenosegError(f"chunk {i} given twice: {by_index[i][0]} and {f}")
        if m.get("complete") is not True or m.get("rows") != md.num_rows:
            raise GenosegError(f"{f}: chunk {i} is incomplete; re-run genoseg predict for it")
        by_index[i] = (f, m, md)
        if first is None:
            first = (f, m)
        else:
            diff = [k for k in SETTINGS if m.get(k) != first[1].get(k)]
            if diff:
                raise GenosegError(f"{f}: predicted with different settings ({', '.join(diff)}) than {first[0]}")
    if first is None:
        raise GenosegError("no chunk files given")
    missing = [i for i in range(plan["n_chunks"]) if i not in by_index]
    if missing:
        raise GenosegError(f"{len(missing)} of {plan['n_chunks']} chunks missing (first: chunk {missing[0]}); "
                           "pass every chunk's Parquet file to --chunks")
    extra = sorted(i for i in by_index if i >= plan["n_chunks"])
    if extra:
        raise GenosegError(f"{by_index[extra[0]][0]}: chunk {extra[0]} is not in this plan of {plan['n_chunks']} chunks")
    return [by_index[i] for i in range(plan["n_chunks"])]


def _dataset_metadata(plan: dict, chunks: list) -> dict:
    """``_genoseg.json`` content from the verified chunk footers (see module docstring)."""
    order = {c["name"]: k for k, c in enumerate(plan["contigs"])}
    width = max(5, len(str(len(chunks) - 1)))
    files, rows = [], {}
    index: dict[str, list] = {k: [] for k in ("contig", "file", "row_group", "offset", "rows", "first_pos",
                                              "last_pos")}
    contigs: list[str] = []
    last = None  # (name, last_pos)
    for i, (path, m, md) in enumerate(chunks):
        files.append({"path": f"part-{i:0{width}d}.parquet", "chunk": i, "rows": md.num_rows,
                      "row_groups": md.num_row_groups, "bytes": os.path.getsize(path)})
        ix = m["index"]
        for name, n, rg, off, p0, p1 in zip(*(ix[k] for k in _INDEX_KEYS)):
            if name not in order:
                raise GenosegError(f"{path}: contig {name!r} is not in the plan")
            if last is not None and (order[name] < order[last[0]] or (name == last[0] and p0 <= last[1])):
                raise GenosegError(f"{path}: rows of contig {name!r} are out of order after chunk {i - 1}; "
                                   "the chunk files are corrupt or from another run")
            if name not in rows:
                contigs.append(name)
                rows[name] = 0
            rows[name] += n
            for k, v in (("contig", len(contigs) - 1), ("file", i), ("row_group", rg), ("offset", off),
                         ("rows", n), ("first_pos", p0), ("last_pos", p1)):
                index[k].append(v)
            last = (name, p1)
    for c in plan["contigs"]:
        want = c.get("predicted_bases")
        if want is not None and rows.get(c["name"], 0) != want:
            raise GenosegError(f"the chunk files hold {rows.get(c['name'], 0)} rows for contig {c['name']!r}, the "
                               f"plan predicts {want}; a chunk file is damaged or from another run")
    m0 = chunks[0][1]
    lists = ("contigs", "skipped", "skipped_regions", "skipped_contigs")
    # chunks may run on different machines: every device seen, in first-use order
    devices = list(dict.fromkeys(m["device"] for _, m, _ in chunks if m.get("device")))
    return {**base_metadata(m0["features"], m0["backbone"]), **{k: m0.get(k) for k in SETTINGS},
            "plan_id": plan["plan_id"], "devices": devices,
            "contigs": contigs, "rows": rows, "files": files, "index": index,
            "plan": {k: v for k, v in plan.items() if k not in lists},
            "skipped_regions": plan.get("skipped_regions", [])}


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed
        shutil.copyfile(src, dst)


def write_arrays(dataset: str, features: Sequence[str], backbone: str,
                 contigs: Mapping[str, tuple[np.ndarray, np.ndarray]], overwrite: bool = False,
                 **meta) -> dict:
    """Write a dataset from arrays: ``contigs`` maps name -> ``(pos int [n], codes
    uint8 [n, F])`` in dataset order (one chunk file; for tests and conversions)."""
    import hashlib

    plan_id = "arrays-" + hashlib.sha256(json.dumps([list(features), backbone, [
        [c, len(p)] for c, (p, _) in contigs.items()]]).encode()).hexdigest()[:12]
    plan = {"plan_id": plan_id, "n_chunks": 1, "contigs": [{"name": c} for c in contigs]}
    parent = os.path.dirname(os.path.abspath(dataset))
    os.makedirs(parent, exist_ok=True)
    import tempfile

    with tempfile.TemporaryDirectory(prefix=".genoseg-arrays-", dir=parent) as tmp:
        path = os.path.join(tmp, "chunk.parquet")
        with PredictionWriter(path, features, base_metadata(list(features), backbone, plan_id=plan_id,
                                                            chunk=0, **meta)) as w:
            for name, (pos, codes) in contigs.items():
                w.write(pos, codes, chrom=name)
        return write_dataset(dataset, plan, [path], overwrite=overwrite)


# ------------------------------------------------------------------------------- read
class _Dataset:
    """A dataset's metadata and index as arrays (cached per ``_genoseg.json`` version)."""

    def __init__(self, path: str, stamp: tuple, meta: dict):
        self.path, self.stamp, self.meta = path, stamp, meta
        self.files = [os.path.join(path, f["path"]) for f in meta["files"]]
        ix = meta["index"]
        self.e_contig = np.asarray(ix["contig"], np.int64)
        self.e_file = np.asarray(ix["file"], np.int64)
        self.e_rg = np.asarray(ix["row_group"], np.int64)
        self.e_off = np.asarray(ix["offset"], np.int64)
        self.e_rows = np.asarray(ix["rows"], np.int64)
        self.e_first = np.asarray(ix["first_pos"], np.int64)
        self.e_last = np.asarray(ix["last_pos"], np.int64)
        self.contigs = list(meta["contigs"])
        bounds = np.searchsorted(self.e_contig, np.arange(len(self.contigs) + 1))
        self.entries = {c: (int(bounds[k]), int(bounds[k + 1])) for k, c in enumerate(self.contigs)}

    def columns(self, features: Optional[Sequence[str]]) -> tuple[str, ...]:
        all_features = self.meta["features"]
        if features is None:
            return tuple(all_features)
        bad = [f for f in features if f not in all_features]
        if bad:
            raise GenosegError(f"{self.path}: unknown feature(s) {', '.join(map(repr, bad))}; the dataset has "
                               f"{', '.join(all_features)}")
        return tuple(features)

    def contig_entries(self, contig: str) -> tuple[int, int]:
        try:
            return self.entries[contig]
        except KeyError:
            raise GenosegError(f"{self.path}: no predictions for contig {contig!r}") from None


_datasets: "collections.OrderedDict[str, _Dataset]" = collections.OrderedDict()
_datasets_lock = threading.Lock()


def _open(dataset: str) -> _Dataset:
    path = os.path.abspath(os.fspath(dataset))
    meta_path = os.path.join(path, META_FILE)
    try:
        st = os.stat(meta_path)
    except OSError:
        raise _not_a_dataset(path) from None
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    with _datasets_lock:
        d = _datasets.get(path)
        if d is not None and d.stamp == stamp:
            _datasets.move_to_end(path)
            return d
    try:
        with open(meta_path) as fh:
            meta = json.load(fh)
    except (OSError, ValueError) as exc:
        raise GenosegError(f"{meta_path}: unreadable ({exc})") from None
    if meta.get("layout") != LAYOUT:
        raise GenosegError(f"{path}: predictions written by an older genoseg (layout "
                           f"{meta.get('layout', 'Hive partitions chrom=...')}); re-run `genoseg collect` "
                           "(or annotate) with this version")
    d = _Dataset(path, stamp, meta)
    with _datasets_lock:
        _datasets[path] = d
        while len(_datasets) > 4:
            _datasets.popitem(last=False)
    return d


def _not_a_dataset(path: str) -> GenosegError:
    if not os.path.isdir(path):
        return GenosegError(f"predictions dataset not found: {path}")
    if any(n.startswith("chrom=") for n in os.listdir(path)):
        return GenosegError(f"{path}: predictions in the old Hive layout (chrom=... directories); re-run "
                            "`genoseg collect` (or annotate) with this version of genoseg")
    return GenosegError(f"{path}: not a genoseg predictions dataset (no {META_FILE})")


class _Reader(threading.local):
    """Per thread: open Parquet files and the last decoded row group (neighbouring small
    contigs share row groups, so reading contig after contig decodes each once)."""

    def __init__(self):
        self.files: "collections.OrderedDict[tuple, pq.ParquetFile]" = collections.OrderedDict()
        self.last: Optional[tuple] = None

    def row_group(self, d: _Dataset, f: int, rg: int, columns: tuple) -> tuple[np.ndarray, np.ndarray]:
        """``(pos int64 [n], codes uint8 [n, F] Fortran order)``, read-only."""
        key = (d.path, d.stamp, f, rg, columns)
        if self.last is not None and self.last[0] == key:
            return self.last[1]
        t = self.parquet(d, f).read_row_group(rg, columns=["pos", *columns])
        pos = _to_numpy(t.column(0))
        codes = np.empty((pos.size, len(columns)), np.uint8, order="F")
        for j in range(len(columns)):
            codes[:, j] = _to_numpy(t.column(1 + j))
        pos.flags.writeable = False
        codes.flags.writeable = False
        self.last = (key, (pos, codes))
        return pos, codes

    def pos_range(self, d: _Dataset, f: int, rg: int) -> tuple[int, int, int]:
        """Rows and ``pos`` min, max of a row group (statistics over all its contigs)."""
        md = self.parquet(d, f).metadata.row_group(rg)
        st = md.column(1).statistics
        if st is None or not st.has_min_max:
            return md.num_rows, -1, 1 << 62
        return md.num_rows, int(st.min), int(st.max)

    def parquet(self, d: _Dataset, f: int) -> "pq.ParquetFile":
        fkey = (d.path, d.stamp, f)
        pf = self.files.get(fkey)
        if pf is None:
            try:
                pf = pq.ParquetFile(d.files[f])
            except (OSError, pa.ArrowException) as exc:
                raise GenosegError(f"{d.files[f]}: cannot read ({exc})") from None
            self.files[fkey] = pf
            while len(self.files) > 8:
                self.files.popitem(last=False)[1].close()
        else:
            self.files.move_to_end(fkey)
        return pf


_reader = _Reader()


def _to_numpy(col: "pa.ChunkedArray") -> np.ndarray:
    """A column of fixed-width numbers as numpy (zero-copy for one chunk without nulls):
    pyarrow's ``to_numpy`` imports pandas (0.3 s per process, a sixth of writing the
    tracks of 10 Mb)."""
    parts = []
    for c in col.chunks:
        dtype = np.dtype(c.type.to_pandas_dtype())
        if c.null_count or not pa.types.is_primitive(c.type) or pa.types.is_boolean(c.type):
            parts.append(c.to_numpy(zero_copy_only=False))
        else:
            parts.append(np.frombuffer(c.buffers()[1], dtype, len(c), c.offset * dtype.itemsize))
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.zeros(0, np.dtype(col.type.to_pandas_dtype()))


def _read_entry(d: _Dataset, e: int, columns: tuple, batch_rows: int, start: Optional[int] = None,
                end: Optional[int] = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches of index entry ``e`` (one contig's rows in one file), optionally only the
    rows with ``start <= pos < end`` (row groups outside are not read)."""
    region = start is not None or end is not None
    lo_pos = -1 if start is None else int(start)
    hi_pos = 1 << 62 if end is None else int(end)
    if region and (d.e_last[e] < lo_pos or d.e_first[e] >= hi_pos):
        return
    f, rg, off, left = int(d.e_file[e]), int(d.e_rg[e]), int(d.e_off[e]), int(d.e_rows[e])
    while left > 0:
        if region:  # the contig's rows in this row group lie within its [min, max]
            nrows, rmin, rmax = _reader.pos_range(d, f, rg)
            if rmin >= hi_pos:
                return
            if rmax < lo_pos:
                left -= min(left, nrows - off)
                rg, off = rg + 1, 0
                continue
        pos, codes = _reader.row_group(d, f, rg, columns)
        take = min(left, pos.size - off)
        if take <= 0:
            raise GenosegError(f"{d.files[f]}: row group {rg} is shorter than {META_FILE} says; the dataset is damaged")
        a, b = off, off + take
        if region:
            a, b = a + int(np.searchsorted(pos[a:b], lo_pos)), a + int(np.searchsorted(pos[a:b], hi_pos))
        for i in range(a, b, batch_rows):
            yield pos[i:min(b, i + batch_rows)], codes[i:min(b, i + batch_rows)]
        if region and b < off + take:
            return  # reached ``end``
        left -= take
        rg += 1
        off = 0


def read_metadata(dataset: str) -> dict:
    """Dataset metadata: ``features``, ``backbone``, ``encoding``, ``scale``,
    ``version``, ``contigs`` (FASTA order), ``rows`` per contig, ``files``, ``index``,
    ``plan`` summary (see the module docstring). A shallow copy: do not modify nested values."""
    return dict(_open(dataset).meta)


def list_contigs(dataset: str) -> list[str]:
    """Contig names that have predictions, in FASTA order."""
    return list(_open(dataset).contigs)


def contig_files(dataset: str, contig: str) -> list[str]:
    """Paths of the files that hold ``contig`` (in order)."""
    d = _open(dataset)
    lo, hi = d.contig_entries(contig)
    return [d.files[f] for f in dict.fromkeys(d.e_file[lo:hi].tolist())]


def iter_codes(dataset: str, contig: str, features: Optional[Sequence[str]] = None,
               batch_rows: int = ROW_GROUP, start: Optional[int] = None, end: Optional[int] = None
               ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream ``(pos int64 [n], codes uint8 [n, F'])`` for ``contig`` in increasing
    ``pos``, at most ``batch_rows`` rows at a time; ``features`` picks and orders the
    columns (default: all, in :func:`read_metadata` order); ``start``/``end`` keep the
    rows in ``[start, end)`` (0-based, half-open) and skip the row groups outside it.
    Arrays are read-only views (``codes`` is column-major: ``codes[:, j]`` is contiguous)."""
    d = _open(dataset)
    columns = d.columns(features)
    lo, hi = d.contig_entries(contig)
    for e in range(lo, hi):
        yield from _read_entry(d, e, columns, int(batch_rows), start, end)


def iter_dataset(dataset: str, features: Optional[Sequence[str]] = None, batch_rows: int = ROW_GROUP
                 ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Stream the whole dataset in order as ``(contig, pos, codes)`` (see
    :func:`iter_codes`); a batch never mixes contigs. Time grows with the rows, not with
    the number of contigs (each row group is decoded once)."""
    d = _open(dataset)
    columns = d.columns(features)
    for e in range(d.e_contig.size):
        name = d.contigs[int(d.e_contig[e])]
        for pos, codes in _read_entry(d, e, columns, int(batch_rows)):
            yield name, pos, codes


def iter_predictions(dataset: str, contig: str, batch_rows: int = 1_000_000, start: Optional[int] = None,
                     end: Optional[int] = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream ``(pos int64 [n], probs float32 [n, F])`` for ``contig`` in increasing
    ``pos`` (features in :func:`read_metadata` order), ``batch_rows`` rows at a time;
    ``start``/``end`` as in :func:`iter_codes`."""
    for pos, codes in iter_codes(dataset, contig, batch_rows=batch_rows, start=start, end=end):
        yield pos, dequantize(codes)
