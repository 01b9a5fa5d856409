"""The predictions store: a Hive-partitioned Parquet dataset.

Layout::

    OUTDIR/<backbone>/predictions/
        _genoseg.json                        metadata + run summary (JSON)
        chrom=<escaped contig>/part-00000.parquet

``<escaped contig>`` is :func:`genoseg.outputs.escape_name` (percent-encoding, so
``pyarrow.dataset``'s Hive partitioning with URI segment decoding reads the contig name
back; ``/``, spaces and ``..`` never make paths outside the dataset).

Columns: ``pos`` (int64, 0-based position in the contig; DELTA_BINARY_PACKED), then one
``uint8`` column per feature named exactly as the model names it. Bases without a
prediction have no row; rows are sorted by ``pos``. All columns are zstd-compressed.

Value encoding (``"encoding": "uint8_linear"``): a probability ``p`` is stored as
``q = round(p * 255)`` (round half to even, ``p`` clipped to [0, 1]) and decoded as
``q / 255``; the error is at most 1/510. Every file carries the key-value metadata key
``genoseg`` (JSON: ``encoding``, ``scale``, ``features``, ``backbone``, ``version``,
``contig`` ...).

Chunk files written by ``genoseg predict`` use the same encoding plus a ``chrom``
column, and are concatenated by :func:`write_dataset` (``genoseg collect``).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Iterable, Iterator, Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import GenosegError
from .outputs import backbone_dir, escape_name, unescape_name

log = logging.getLogger(__name__)

ENCODING = "uint8_linear"
SCALE = 255
META_KEY = b"genoseg"
META_FILE = "_genoseg.json"
ROW_GROUP = 1 << 20  # rows per Parquet row group


def quantize(p: np.ndarray) -> np.ndarray:
    """Probabilities (any float array) -> ``uint8`` codes ``round(p * 255)``."""
    q = np.clip(p, 0.0, 1.0)  # one temporary, scaled and rounded in place
    q *= SCALE
    return np.rint(q, out=q).astype(np.uint8)


def dequantize(q: np.ndarray) -> np.ndarray:
    """``uint8`` codes -> ``float32`` probabilities ``q / 255``."""
    return q.astype(np.float32) / np.float32(SCALE)


def dataset_dir(outdir: str, backbone: str) -> str:
    """``OUTDIR/<backbone>/predictions``."""
    return os.path.join(backbone_dir(outdir, backbone), "predictions")


def base_metadata(features: list[str], backbone: str, **extra) -> dict:
    from . import __version__

    return {"encoding": ENCODING, "scale": SCALE, "decode": "p = q / 255", "features": list(features),
            "backbone": backbone, "version": __version__, "coordinates": "0-based", **extra}


def _schema(features: list[str], meta: dict, with_chrom: bool) -> pa.Schema:
    fields = ([pa.field("chrom", pa.dictionary(pa.int32(), pa.string()))] if with_chrom else [])
    fields += [pa.field("pos", pa.int64())] + [pa.field(f, pa.uint8()) for f in features]
    return pa.schema(fields, metadata={META_KEY: json.dumps(meta).encode()})


class PredictionWriter:
    """Streams ``(pos, codes)`` blocks into one Parquet file (row groups of
    :data:`ROW_GROUP` rows). ``with_chrom`` adds a ``chrom`` column (chunk files)."""

    def __init__(self, path: str, features: list[str], meta: dict, with_chrom: bool = False):
        self.features = list(features)
        self.with_chrom = with_chrom
        self.schema = _schema(self.features, meta, with_chrom)
        self.rows = 0
        self._buf: list[tuple[Optional[str], np.ndarray, np.ndarray]] = []
        self._nbuf = 0
        self._w = pq.ParquetWriter(
            path, self.schema, compression="zstd", compression_level=3,
            use_dictionary=(["chrom"] if with_chrom else []) + self.features,
            column_encoding={"pos": "DELTA_BINARY_PACKED"}, write_statistics=["pos"],
        )

    def write(self, pos: np.ndarray, codes: np.ndarray, chrom: Optional[str] = None) -> None:
        """Append rows: ``pos`` int64 ``[n]``, ``codes`` uint8 ``[n, F]``."""
        if pos.size == 0:
            return
        self._buf.append((chrom, np.asarray(pos, np.int64), np.asarray(codes, np.uint8)))
        self._nbuf += pos.size
        if self._nbuf >= ROW_GROUP:
            self._flush()

    def write_arrow(self, columns: list) -> None:
        """Append rows given as Arrow arrays in schema order (no conversion)."""
        batch = pa.RecordBatch.from_arrays(columns, schema=self.schema)
        if batch.num_rows:
            self._buf.append(batch)
            self._nbuf += batch.num_rows
            if self._nbuf >= ROW_GROUP:
                self._flush()

    def _to_batch(self, items: list) -> pa.RecordBatch:
        pos = np.concatenate([b[1] for b in items])
        codes = np.concatenate([b[2] for b in items])
        cols = []
        if self.with_chrom:
            names = [b[0] for b in items]
            uniq = list(dict.fromkeys(names))
            idx = np.repeat(np.array([uniq.index(n) for n in names], np.int32), [b[1].size for b in items])
            cols.append(pa.DictionaryArray.from_arrays(pa.array(idx), pa.array(uniq, pa.string())))
        cols.append(pa.array(pos))
        cols += [pa.array(np.ascontiguousarray(codes[:, j])) for j in range(codes.shape[1])]
        return pa.RecordBatch.from_arrays(cols, schema=self.schema)

    def _flush(self) -> None:
        """Write the buffered rows as one row group."""
        if not self._buf:
            return
        batches, pending = [], []
        for item in self._buf + [None]:
            if isinstance(item, tuple):
                pending.append(item)
                continue
            if pending:
                batches.append(self._to_batch(pending))
                pending = []
            if item is not None:
                batches.append(item)
        table = pa.Table.from_batches(batches, schema=self.schema)
        if self.with_chrom:
            table = table.unify_dictionaries()
        self._w.write_table(table, row_group_size=table.num_rows + 1)
        self.rows += table.num_rows
        self._buf, self._nbuf = [], 0

    def close(self) -> None:
        self._flush()
        self._w.close()


def iter_batches(path: str, columns: Optional[list] = None, batch_rows: int = ROW_GROUP) -> Iterator[pa.RecordBatch]:
    """Record batches of a Parquet file, one row group read at a time (pyarrow's own
    ``iter_batches`` reads ahead and can hold several hundred MB for large files)."""
    pf = pq.ParquetFile(path)
    for i in range(pf.metadata.num_row_groups):
        yield from pf.read_row_group(i, columns=columns).to_batches(max_chunksize=batch_rows)


def file_metadata(path: str) -> dict:
    try:
        md = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid) as exc:
        raise GenosegError(f"{path}: not a readable Parquet file ({exc})") from None
    if META_KEY not in md:
        raise GenosegError(f"{path}: not a genoseg predictions file (no 'genoseg' metadata)")
    return json.loads(md[META_KEY])


# ---------------------------------------------------------------------------- collect
def write_dataset(dataset: str, plan: dict, chunk_files: Iterable[str], overwrite: bool = False) -> dict:
    """Concatenate chunk files (``genoseg predict`` outputs of one plan) into the dataset
    directory ``dataset`` (normally :func:`dataset_dir`), atomically.

    Checks that the chunk files belong to ``plan`` (same ``plan_id``) and that each of
    its chunks is present exactly once. Streams row groups, so memory is bounded.
    Returns the dataset metadata (also written to ``_genoseg.json``).
    """
    from .outputs import atomic_path

    by_index: dict[int, str] = {}
    meta0 = None
    for f in chunk_files:
        m = file_metadata(f)
        if m.get("plan_id") != plan["plan_id"]:
            raise GenosegError(f"{f}: made from plan {m.get('plan_id')}, not from this plan ({plan['plan_id']})")
        i = int(m["chunk"])
        if i in by_index:
            raise GenosegError(f"chunk {i} given twice: {by_index[i]} and {f}")
        by_index[i] = f
        if meta0 is None:
            meta0 = m
        elif m["features"] != meta0["features"] or m["backbone"] != meta0["backbone"] or m.get("reverse_complement") != meta0.get("reverse_complement"):
            raise GenosegError(f"{f}: predicted with different settings than {by_index[int(meta0['chunk'])]}")
    missing = [i for i in range(plan["n_chunks"]) if i not in by_index]
    if missing:
        raise GenosegError(f"{len(missing)} of {plan['n_chunks']} chunks missing (first: chunk {missing[0]}); "
                           "pass every chunk's Parquet file to --chunks")
    if meta0 is None:
        raise GenosegError("no chunk files given")
    features = meta0["features"]
    contig_order = [c["name"] for c in plan["contigs"]]
    rows: dict[str, int] = {}
    with atomic_path(dataset, overwrite=overwrite, is_dir=True) as tmp:
        writer, current = None, None
        for i in range(plan["n_chunks"]):
            for batch in iter_batches(by_index[i]):
                chrom = batch.column(0)
                if isinstance(chrom, pa.DictionaryArray):
                    dict_names = chrom.dictionary.to_pylist()
                    ids = chrom.indices.to_numpy(zero_copy_only=False)
                else:
                    dict_names, ids = np.unique(chrom.to_numpy(zero_copy_only=False), return_inverse=True)
                    dict_names = list(dict_names)
                cuts = np.flatnonzero(np.diff(ids)) + 1
                for a, b in zip(np.r_[0, cuts], np.r_[cuts, ids.size]):
                    name = dict_names[int(ids[a])]
                    if name != current:
                        if writer is not None:
                            writer.close()
                            rows[current] = writer.rows
                        if name in rows:
                            raise GenosegError(f"contig {name!r} appears in non-consecutive chunks; chunk files are corrupt")
                        current = name
                        part = os.path.join(tmp, "chrom=" + escape_name(name))
                        os.makedirs(part)
                        writer = PredictionWriter(os.path.join(part, "part-00000.parquet"), features,
                                                  {**base_metadata(features, meta0["backbone"]), "contig": name,
                                                   "plan_id": plan["plan_id"],
                                                   "reverse_complement": meta0.get("reverse_complement", False),
                                                   "compute_dtype": meta0.get("compute_dtype")})
                    writer.write_arrow([col.slice(int(a), int(b - a)) for col in batch.columns[1:]])
        if writer is not None:
            writer.close()
            rows[current] = writer.rows
        meta = {**base_metadata(features, meta0["backbone"]), "plan_id": plan["plan_id"],
                "reverse_complement": meta0.get("reverse_complement", False),
                "compute_dtype": meta0.get("compute_dtype"),
                "contigs": [c for c in contig_order if c in rows],
                "rows": {c: rows[c] for c in contig_order if c in rows},
                "plan": {k: plan[k] for k in plan if k not in ("skipped_regions",)},
                "skipped_regions": plan.get("skipped_regions", [])}
        with open(os.path.join(tmp, META_FILE), "w") as fh:
            json.dump(meta, fh, indent=1)
    log.info("collect: %d contigs, %d rows -> %s", len(rows), sum(rows.values()), dataset)
    return meta


# ------------------------------------------------------------------------------- read
def read_metadata(dataset: str) -> dict:
    """Dataset metadata: ``features``, ``backbone``, ``encoding``, ``scale``,
    ``version``, ``contigs`` (in plan order), ``rows`` per contig, ``plan`` summary."""
    path = os.path.join(dataset, META_FILE)
    if os.path.isfile(path):
        with open(path) as fh:
            return json.load(fh)
    parts = _partitions(dataset)
    if not parts:
        raise GenosegError(f"{dataset}: not a genoseg predictions dataset")
    meta = file_metadata(contig_files(dataset, parts[0][0])[0])
    meta["contigs"] = [n for n, _ in parts]
    return meta


def _partitions(dataset: str) -> list[tuple[str, str]]:
    if not os.path.isdir(dataset):
        raise GenosegError(f"predictions dataset not found: {dataset}")
    out = []
    for d in sorted(os.listdir(dataset)):
        if d.startswith("chrom=") and os.path.isdir(os.path.join(dataset, d)):
            out.append((unescape_name(d[len("chrom="):]), d))
    return out


def list_contigs(dataset: str) -> list[str]:
    """Contig names (unescaped) that have predictions, in plan order."""
    meta_path = os.path.join(dataset, META_FILE)
    names = [n for n, _ in _partitions(dataset)]
    if os.path.isfile(meta_path):
        with open(meta_path) as fh:
            order = json.load(fh).get("contigs", [])
        have = set(names)
        return [c for c in order if c in have] + sorted(have - set(order))
    return names


def contig_files(dataset: str, contig: str) -> list[str]:
    d = os.path.join(dataset, "chrom=" + escape_name(contig))
    if not os.path.isdir(d):
        raise GenosegError(f"{dataset}: no predictions for contig {contig!r}")
    return [os.path.join(d, f) for f in sorted(os.listdir(d)) if f.endswith(".parquet")]


def iter_predictions(dataset: str, contig: str, batch_rows: int = 1_000_000
                     ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream ``(pos int64 [n], probs float32 [n, F])`` for ``contig`` in increasing
    ``pos`` (features in :func:`read_metadata` order), ``batch_rows`` rows at a time."""
    for path in contig_files(dataset, contig):
        features = file_metadata(path)["features"]
        for batch in iter_batches(path, ["pos"] + features, batch_rows):
            pos = batch.column(0).to_numpy().astype(np.int64, copy=False)
            q = np.empty((pos.size, len(features)), np.uint8)
            for j in range(len(features)):
                q[:, j] = batch.column(1 + j).to_numpy()
            yield pos, dequantize(q)
