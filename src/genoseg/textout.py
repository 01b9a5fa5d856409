"""Vectorised text output for calls: BED6 / GFF3 lines built column-wise with Arrow
compute (no per-line Python), bgzip, and a vectorised BED reader.

Segments travel between the calling pass and the writers as *segment files*: flat
binary records (:data:`SEG_DTYPE`) appended as segments close, one file per feature,
in contig-then-start order, read back in blocks (:func:`read_segments`). Memory is
one block whatever the number of segments.
"""

from __future__ import annotations

import os
from typing import Iterator, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import GenosegError

#: One called segment: contig index, 0-based half-open [start, end), sum of the stored
#: codes over the called bases, number of called bases, maximum code.
SEG_DTYPE = np.dtype([("cid", "<i4"), ("start", "<i8"), ("end", "<i8"), ("qsum", "<i8"), ("n", "<i8"),
                      ("qmax", "u1")])

BLOCK = 1 << 18  # records per formatted block

#: BGZF compression level of the calls BED files (level 1: ~4x faster than bgzip's
#: default 6 for ~20 % larger files; calls files are small except on noise).
BGZF_LEVEL = 1


def append_segments(path: str, rec: np.ndarray) -> None:
    with open(path, "ab") as fh:
        rec.tofile(fh)


def segment_count(path: str) -> int:
    return os.path.getsize(path) // SEG_DTYPE.itemsize if os.path.exists(path) else 0


def read_segments(path: str, start: int = 0, count: int = -1) -> np.ndarray:
    """Records ``start .. start + count`` of a segment file (all from ``start`` when
    ``count`` is -1), read into memory (a memory map would count its pages in the RSS)."""
    if start >= segment_count(path) or count == 0:
        return np.zeros(0, SEG_DTYPE)
    return np.fromfile(path, SEG_DTYPE, count=count, offset=start * SEG_DTYPE.itemsize)


def segment_blocks(path: str, block: int = BLOCK) -> Iterator[np.ndarray]:
    for i in range(0, segment_count(path), block):
        yield read_segments(path, i, block)


def milli_score(qsum: np.ndarray, n: np.ndarray, scale: int = 255) -> np.ndarray:
    """``round(1000 * mean probability)`` = ``round(1000 * qsum / (scale * n))``, exact
    integer arithmetic, ties to even (so BED scores and GFF3 scores agree bit for bit)."""
    num = 1000 * np.asarray(qsum, np.int64)
    den = scale * np.maximum(np.asarray(n, np.int64), 1)
    k, rem = np.divmod(num, den)
    up = (2 * rem > den) | ((2 * rem == den) & (k % 2 == 1))
    return k + up


_MILLI = None
_PROB = None


def _milli_text() -> pa.Array:
    """``"0.000"`` .. ``"1.000"`` indexed by the milli score."""
    global _MILLI
    if _MILLI is None:
        _MILLI = pa.array([f"{k // 1000}.{k % 1000:03d}" for k in range(1001)])
    return _MILLI


def _prob_text() -> pa.Array:
    """The probability of each code with 3 decimals (``q / 255``, as float32 decodes it)."""
    global _PROB
    if _PROB is None:
        grid = np.arange(256, dtype=np.float32) / np.float32(255)
        _PROB = pa.array([f"{float(v):.3f}\n" for v in grid])
    return _PROB


def _ints(x: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(np.asarray(x, np.int64)), pa.string())


def _joined_bytes(arr: pa.Array) -> memoryview:
    """The concatenated values of a string array (no separators): its data buffer."""
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    if arr.null_count:
        raise GenosegError("internal error: null in formatted text")
    offsets = np.frombuffer(arr.buffers()[1], np.int32, count=len(arr) + 1, offset=4 * arr.offset)
    return memoryview(arr.buffers()[2])[offsets[0]:offsets[-1]] if len(arr) else memoryview(b"")


def bed_lines(rec: np.ndarray, names: pa.Array, feature: str) -> memoryview:
    """BED6 text of segment records: chrom, start, end, name = feature,
    score = round(mean probability x 1000), strand ``.``."""
    chrom = names.take(pa.array(rec["cid"]))
    score = _ints(milli_score(rec["qsum"], rec["n"]))
    line = pc.binary_join_element_wise(chrom, _ints(rec["start"]), _ints(rec["end"]), feature, score, ".\n", "\t")
    return _joined_bytes(line)


def gff_lines(rec: np.ndarray, f: np.ndarray, ids: np.ndarray, seqids: pa.Array, source: str,
              types: pa.Array) -> memoryview:
    """GFF3 feature lines (1-based closed) of segment records of several features:
    ``f`` feature index (into ``types``), ``ids`` 1-based number within the feature."""
    ftype = types.take(pa.array(f))
    score = _milli_text().take(pa.array(milli_score(rec["qsum"], rec["n"])))
    attrs = pc.binary_join_element_wise("ID=", ftype, "_", _ints(ids), ";Name=", ftype, ";max_prob=",
                                        _prob_text().take(pa.array(rec["qmax"])), "")
    line = pc.binary_join_element_wise(seqids.take(pa.array(rec["cid"])), source, ftype, _ints(rec["start"] + 1),
                                       _ints(rec["end"]), score, ".", ".", attrs, "\t")
    return _joined_bytes(line)


def write_bed_gz(seg_path: str, out_path: str, names: pa.Array, feature: str) -> None:
    """Segment file -> bgzipped BED (``out_path``) + its tabix index."""
    import pysam

    with pysam.BGZFile(out_path, f"wb{BGZF_LEVEL}") as out:
        for rec in segment_blocks(seg_path):
            out.write(bytes(bed_lines(rec, names, feature)))
    pysam.tabix_index(out_path, preset="bed", force=True)


def merged_order(seg_paths: Sequence[str], block: int = BLOCK) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """K-way merge of per-feature segment files by (contig, start), ties in feature order.

    Yields blocks ``(records, feature index, 1-based number within its feature)`` of at
    most ``block`` records (memory: that block).
    """
    sizes = [segment_count(p) for p in seg_paths]
    block = max(1024, block // max(1, len(seg_paths)))
    cur = [0] * len(seg_paths)
    key = lambda r: (r["cid"].astype(np.int64) << 40) | r["start"]  # noqa: E731  start < 2^40
    while True:
        live = [k for k in range(len(seg_paths)) if cur[k] < sizes[k]]
        if not live:
            return
        blocks = {k: read_segments(seg_paths[k], cur[k], block) for k in live}
        # everything up to the smallest last key of a feature with more to come is safe
        limit = min((int(key(blocks[k][-1:])[0]) for k in live if cur[k] + block < sizes[k]), default=None)
        parts, feats, ids = [], [], []
        for k in live:
            b = blocks[k]
            m = b.size if limit is None else int(np.searchsorted(key(b), limit, side="right"))
            if m:
                parts.append(b[:m])
                feats.append(np.full(m, k, np.int64))
                ids.append(np.arange(cur[k] + 1, cur[k] + m + 1, dtype=np.int64))
                cur[k] += m
        rec, f, i = np.concatenate(parts), np.concatenate(feats), np.concatenate(ids)
        order = np.argsort(key(rec), kind="stable")
        yield rec[order], f[order], i[order]


_BED_TYPES = {"chrom": pa.string(), "start": pa.int64(), "end": pa.int64(), "name": pa.string(),
              "score": pa.int64(), "strand": pa.string()}


def read_bed_table(path: str, columns: Sequence[str] = ("chrom", "start", "end")) -> pa.Table:
    """Read the ``columns`` (of ``chrom start end name score strand``) of a (bgzipped)
    BED into an Arrow table (``chrom``/``name``/``strand`` strings, the others int64).

    Vectorised (pyarrow.csv). Every line is data: a contig named ``#x``, ``track1`` or
    ``browser_2`` is read as a contig, unlike BED tools that skip lines starting with
    ``#``, ``track`` or ``browser`` as comments/headers (genoseg writes no header).
    Memory: the table (use :func:`iter_bed` for bounded memory).
    """
    batches = list(iter_bed(path, columns))
    if not batches:
        return pa.table({n: pa.array([], _BED_TYPES[n]) for n in columns})
    return pa.Table.from_batches(batches)


def iter_bed(path: str, columns: Sequence[str] = ("chrom", "start", "end"), block_size: int = 1 << 24
             ) -> Iterator[pa.RecordBatch]:
    """Stream ``columns`` of a (bgzipped) BED as record batches (see :func:`read_bed_table`)."""
    import gzip
    import pyarrow.csv as pcsv

    if not os.path.exists(path):
        raise GenosegError(f"BED file {path} does not exist")
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as fh:
        first = fh.readline()
    if not first.strip():
        return
    width = first.rstrip(b"\r\n").count(b"\t") + 1
    names = list(_BED_TYPES)[:width] + [f"column_{k + 1}" for k in range(6, width)]
    bad = [c for c in columns if c not in names]
    if bad:
        raise GenosegError(f"{path}: has {width} columns, no {', '.join(bad)} column")
    try:
        reader = pcsv.open_csv(
            pa.input_stream(path, compression="gzip" if path.endswith(".gz") else None),
            read_options=pcsv.ReadOptions(column_names=names, block_size=block_size),
            parse_options=pcsv.ParseOptions(delimiter="\t", quote_char=False, escape_char=False),
            convert_options=pcsv.ConvertOptions(column_types={n: _BED_TYPES[n] for n in columns},
                                                include_columns=list(columns), strings_can_be_null=False,
                                                quoted_strings_can_be_null=False))
        yield from reader
    except pa.ArrowInvalid as exc:
        raise GenosegError(f"{path}: not a BED file of {width} tab-separated columns ({exc})") from None
