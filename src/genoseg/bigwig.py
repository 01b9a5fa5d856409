"""A vectorised bigWig writer for 8-bit codes (numpy + ISA-L deflate).

libBigWig (pyBigWig) adds entries one at a time and builds the zoom levels by reading
the whole file back at close: about 2 M values/s, i.e. 0.1-0.4 Mb/s for 14 features.
Here the values are the stored codes ``q`` (``value = q / scale``), and everything is
computed with numpy over whole batches of rows that may hold many contigs: runs,
sections, zoom summaries (exact integer sums of codes) and both indexes. Python loops
run per data block (one deflate call each) and per index node only, so the time grows
with the bases, not with the number of contigs.

File layout (UCSC bigWig, version 4; Kent et al. 2010, the format libBigWig, pyBigWig,
IGV and the UCSC browser read): 64-byte header, zoom headers, total summary, chromosome
B+ tree (keys sorted bytewise, chromosome ids in the order given), data block count,
zlib-compressed data sections, the R-tree index of the sections, then per zoom level
its record count, compressed summary records (``count, min, max, sum, sum of squares``
per ``reduction`` bp bin, as in kent's writer: the record spans the covered part of the
bin) and their R-tree; the magic number closes the file. Coordinates are 0-based
half-open; values float32.

Data. Each contig is cut into aligned *cells* of :data:`CELL` bp; per feature and
cell, runs of equal codes become bedGraph entries (``[start, end) value``) when they
average at least :data:`MIN_MEAN_RUN` bp, else the values are written fixed-step, span
1. Not the smaller raw form: deflate turns a fixed-step run of equal values into one
match, so on smooth output with runs of 5-10 bp fixed-step blocks compress to half the
size of the same data as bedGraph entries (whose positions are new bytes every 12) and
deflate faster; past ~12 bp the entries win (measured on the demo model's output, 10 Mb,
11 features: files 31 % smaller and writing 1.12x faster than with the raw-size rule).
A section (one compressed block) holds up to :data:`ENTRIES_PER_SECTION` entries or
:data:`FIXED_PER_SLOT` values of one cell (a section's item count is 16-bit). Kent's
writers put 1,024 items in a section; here more: each deflate call costs ~14 us for its
Huffman tables whatever its size, and bigger sections make writing faster and the files
smaller, for ~50 KB (entries) or 128 KB (values) instead of ~12 KB to inflate per query;
compressed, either is ~10-20 KB on smooth output (32,768 values a section instead of
16,384: 1.06x faster writing, median of 7).
Given batches that never split a cell (:func:`genoseg.frames.iter_frames` with
``align=CELL``), the file does not depend on how the rows were batched.

Zoom levels. The first level summarises :data:`ZOOM_BASE` bp bins (kent's writers pick
the first level so that it is at most half the data's size; 128 bp keeps it near a
fifth on smooth output, where 32 bp made it as large as the data), each next one 4x
wider, up to the longest contig. Level 0 is computed from the runs of a batch
(run-length form, never per base); every next level from the previous one, with the
sums of codes and squared codes kept as exact integers until they are written.
Each level's blocks stay in memory up to 1 MB (most levels never reach it: no
file to create and remove), then are spilled to an unnamed temporary file beside the
output, so memory is bounded by one batch whatever the genome.

Deflate: ISA-L (``isal``; standard zlib streams, 3x faster than zlib at the same
level), level 1, and level 0 for blocks under :data:`SMALL_BLOCK` bytes (level 1 costs
~8 us per call whatever the size: a genome of 10^5 small scaffolds has 10^5 blocks
per track).
"""

from __future__ import annotations

import os
import struct
import tempfile
import zlib
from typing import Sequence

import numpy as np

BIGWIG_MAGIC = 0x888FFC26
CIRTREE_MAGIC = 0x2468ACE0
BPT_MAGIC = 0x78CA8C91
BLOCK_SIZE = 256             # children per index node
ITEMS_PER_SLOT = 1024        # zoom records per block
ENTRIES_PER_SECTION = 4096   # bedGraph entries per block
FIXED_PER_SLOT = 1 << 15     # fixed-step values per block (half a cell: a section counts < 2^16)
CELL = 1 << 16               # bp: bedGraph or fixed-step is decided per aligned cell
ZOOM_BASE = 128              # first zoom level reduction (bp); each next one x4
ZOOM_STEP = 4
SMALL_BLOCK = 4096           # raw bytes under which a block is deflated at level 0
MIN_MEAN_RUN = 12            # bp: a cell is written as runs (bedGraph) if they average at least this

try:  # ISA-L's deflate: standard zlib streams, ~3x faster than zlib at level 1
    from isal.isal_zlib import compress as _isal_compress

    def _deflate(raw: bytes) -> bytes:
        return _isal_compress(raw, 0 if len(raw) < SMALL_BLOCK else 1)
except ImportError:  # pragma: no cover
    def _deflate(raw: bytes) -> bytes:
        return zlib.compress(raw, 1)

_SECTION = np.dtype([("cid", "<u4"), ("start", "<u4"), ("end", "<u4"), ("step", "<u4"), ("span", "<u4"),
                     ("type", "u1"), ("reserved", "u1"), ("count", "<u2")])
_BEDGRAPH = np.dtype([("start", "<u4"), ("end", "<u4"), ("value", "<f4")])
_ZOOM = np.dtype([("cid", "<u4"), ("start", "<u4"), ("end", "<u4"), ("count", "<u4"), ("min", "<f4"),
                  ("max", "<f4"), ("sum", "<f4"), ("sumsq", "<f4")])
_LEAF = np.dtype([("c0", "<u4"), ("s0", "<u4"), ("c1", "<u4"), ("s1", "<u4"), ("offset", "<u8"), ("size", "<u8")])
_BRANCH = np.dtype([("c0", "<u4"), ("s0", "<u4"), ("c1", "<u4"), ("s1", "<u4"), ("offset", "<u8")])
_BEDGRAPH_TYPE, _FIXED_TYPE = 1, 3

#: Zoom records while summarising (struct of arrays): codes' min/max, exact integer
#: sums of codes (``s1``) and squared codes (``s2``).
_REC_FIELDS = ("cid", "start", "end", "count", "min", "max", "s1", "s2")


class Header:
    """The chromosome list shared by a set of bigWig files: names and sizes (header
    order), the chromosome B+ tree (built once) and the zoom reductions."""

    def __init__(self, chroms: Sequence[tuple[str, int]], zoom_levels: int = 10):
        self.names = [str(c) for c, _ in chroms]
        self.sizes = [int(n) for _, n in chroms]
        longest = max(self.sizes, default=0)
        reductions = [ZOOM_BASE * ZOOM_STEP ** k for k in range(zoom_levels)]
        self.reductions = [r for r in reductions if r < longest] or reductions[:1]
        assert ZOOM_BASE & (ZOOM_BASE - 1) == 0 and CELL % ZOOM_BASE == 0
        assert max(ENTRIES_PER_SECTION, FIXED_PER_SLOT) < 1 << 16  # a section's item count is 16-bit
        # the tree follows the 64-byte header, the zoom headers and the 40-byte summary
        self.chrom_tree_offset = 64 + 24 * len(self.reductions) + 40
        self.chrom_tree = _chrom_tree(self.names, self.sizes, self.chrom_tree_offset)


class Layout:
    """Row structure of a batch of rows, shared by the writers of all features.

    Rows are in dataset order: contig by contig (``piece_cid``: header ids of the
    contigs, ``piece_len``: their rows here, each > 0), positions strictly increasing
    within a contig (``pos`` int64; the store refuses anything else). A *segment* is a
    stretch of consecutive positions of one contig (rows ``seg_row`` to ``seg_end``,
    first position ``seg_pos``); ``block_row`` are the rows where an entry must start
    whatever the values: a segment start or a :data:`CELL` start. First-level zoom bins
    (``reduction`` bp) are described by their first rows (``bin_row``), contig ids,
    start and end positions and covered bases. Everything is computed from the segment
    bounds, not base by base (one frame of a long contig is one segment).
    """

    def __init__(self, pos: np.ndarray, piece_cid: np.ndarray, piece_len: np.ndarray, reduction: int):
        n = pos.size
        self.pos, self.n = pos, n
        self.piece_row = np.cumsum(piece_len) - piece_len  # first row of each contig piece
        self.piece_cid = np.asarray(piece_cid, np.int64)
        self.seg_row = _segment_starts(pos, self.piece_row)
        self.seg_end = np.append(self.seg_row[1:], n)
        self.seg_pos = pos[self.seg_row]
        self.block_row = self._unit_starts(CELL, keep_segments=True)
        self.block_end = np.append(self.block_row[1:], n)
        self.cell_row = self._unit_starts(CELL)
        self.cell_rows = np.diff(self.cell_row, append=n)
        self.block_cell = np.searchsorted(self.cell_row, self.block_row, side="right") - 1
        self.bin_row = self._unit_starts(reduction)
        bin_end = np.append(self.bin_row[1:], n)
        self.bin_count = bin_end - self.bin_row
        self.bin_cid = self.cid(self.bin_row).astype(np.uint32)
        self.bin_start, self.bin_end = pos[self.bin_row], pos[bin_end - 1] + 1

    def _unit_starts(self, unit: int, keep_segments: bool = False) -> np.ndarray:
        """Rows where an aligned tile of ``unit`` bp starts (the first row of a contig
        piece, or a row in another tile than the row before it; with ``keep_segments``
        every segment start too)."""
        lo, length = self.seg_pos, self.seg_end - self.seg_row
        inner = (lo + length - 1) // unit - lo // unit  # tile starts inside each segment
        k = np.arange(int(inner.sum()) + lo.size) - np.repeat(np.cumsum(inner + 1) - inner - 1, inner + 1)
        # k = 0: the segment start; k >= 1: the k-th tile start after it
        seg_lo = np.repeat(lo, inner + 1)
        rows = np.repeat(self.seg_row, inner + 1) + np.where(k > 0, (seg_lo // unit + k) * unit - seg_lo, 0)
        if keep_segments:
            return rows
        first = np.flatnonzero(k == 0)
        seg = rows[first]
        same = self.pos[seg] // unit == self.pos[np.maximum(seg - 1, 0)] // unit  # a gap within a tile
        same[np.searchsorted(seg, self.piece_row)] = False
        return np.delete(rows, first[same]) if same.any() else rows

    def cid(self, rows: np.ndarray) -> np.ndarray:
        """Header id of the contig of each of ``rows``."""
        return self.piece_cid[np.searchsorted(self.piece_row, rows, side="right") - 1]


def _segment_starts(pos: np.ndarray, piece_row: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """First rows of the stretches of consecutive positions (``pos`` strictly
    increasing within each piece starting at ``piece_row``): piece starts and gaps.
    Chunks of ``chunk`` rows are checked from their end points (consecutive iff their
    span equals their rows), base by base only where that fails."""
    n = pos.size
    starts = np.union1d(piece_row, np.arange(0, n, chunk))
    ends = np.append(starts[1:], n)
    gap_chunks = np.flatnonzero(pos[ends - 1] - pos[starts] != ends - 1 - starts)
    # the rows joining two chunks of one piece
    join = np.setdiff1d(starts[1:], piece_row, assume_unique=True)
    found = [piece_row, join[pos[join] != pos[join - 1] + 1]]
    if gap_chunks.size * chunk > n // 8:
        found.append(np.flatnonzero(pos[1:] != pos[:-1] + 1) + 1)
    else:
        for a, b in zip(starts[gap_chunks].tolist(), ends[gap_chunks].tolist()):
            found.append(np.flatnonzero(np.diff(pos[a:b]) != 1) + (a + 1))
    return np.unique(np.concatenate(found))


class _ZoomLevel:
    """One zoom level: aggregates records (each within one of its bins; sorted) per bin,
    in large batches; finished records are passed to the next level and deflated, 1,024
    a block, into a spooled temporary file (copied in at close)."""

    def __init__(self, reduction: int, tmpdir: str, parent: "_ZoomLevel | None", scale: float):
        self.reduction, self.next, self.scale = reduction, parent, scale
        self.buf: list[dict] = []  # records to aggregate
        self.nbuf = 0
        self.tail = np.zeros(0, _ZOOM)  # finished records short of a full block
        self.count = 0
        self.leaves: list[np.ndarray] = []
        # unnamed file in ``tmpdir`` past 1 MB: nothing left behind if the process is killed
        self.fh = tempfile.SpooledTemporaryFile(max_size=1 << 20, dir=tmpdir)

    def add(self, rec: dict) -> None:
        if rec["cid"].size:
            self.buf.append(rec)
            self.nbuf += rec["cid"].size
            if self.nbuf >= 1 << 16:
                self._drain(final=False)

    def _drain(self, final: bool) -> None:
        if self.buf:
            rec = _rec_cat(self.buf)
            key = (rec["cid"].astype(np.int64) << 32) | (rec["start"] >> (self.reduction.bit_length() - 1))
            first = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
            out = rec if first.size == key.size else _rec_reduce(rec, first)
            self.buf, self.nbuf = [], 0
            if not final:  # the last bin may continue in the next batch
                self.buf, self.nbuf = [_rec_take(out, slice(-1, None))], 1
                out = _rec_take(out, slice(None, -1))
            if out["cid"].size:
                self.count += int(out["cid"].size)
                recs = _zoom_records(out, self.scale)
                self.tail = _cat([self.tail, recs]) if self.tail.size else recs
                if self.next is not None:
                    self.next.add(out)
        full = self.tail.size if final else self.tail.size - self.tail.size % ITEMS_PER_SLOT
        if full:
            recs, self.tail = self.tail[:full], self.tail[full:]
            self.leaves.append(_write_blocks(self.fh, recs, ITEMS_PER_SLOT, self.fh.tell()))

    def flush(self) -> None:
        """Finish this level and the ones above it."""
        self._drain(final=True)
        if self.next is not None:
            self.next.flush()


def _write_blocks(fh, recs: np.ndarray, per_block: int, offset: int) -> np.ndarray:
    """Deflate ``recs`` (zoom records), ``per_block`` a block, to ``fh``; returns the
    R-tree leaves (block offsets from ``offset``, the position in the final file)."""
    raw = memoryview(np.ascontiguousarray(recs).view(np.uint8))  # blocks deflated in place, no copies
    bsz = per_block * recs.dtype.itemsize
    blocks = [_deflate(raw[i:i + bsz]) for i in range(0, len(raw), bsz)]
    firsts = np.arange(0, recs.size, per_block)
    lasts = np.append(firsts[1:], recs.size) - 1
    sizes = np.fromiter(map(len, blocks), np.int64, len(blocks))
    leaves = np.zeros(len(blocks), _LEAF)
    leaves["c0"], leaves["s0"], leaves["c1"], leaves["s1"] = (recs["cid"][firsts], recs["start"][firsts],
                                                              recs["cid"][lasts], recs["end"][lasts])
    leaves["offset"], leaves["size"] = offset + np.cumsum(sizes) - sizes, sizes
    fh.write(b"".join(blocks))
    return leaves


def _split(start: np.ndarray, length: np.ndarray, most: int) -> tuple[np.ndarray, np.ndarray]:
    """Ranges ``[start, start + length)`` cut into pieces of at most ``most``: their
    starts and ends."""
    n = -(-length // most)
    k = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    s = np.repeat(start, n) + most * k
    return s, np.minimum(s + most, np.repeat(start + length, n))


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    """Structured arrays (one dtype) end to end: concatenated as bytes, 2x faster than
    field by field."""
    return np.concatenate([p.view(np.uint8) for p in parts]).view(parts[0].dtype)


def _rec_cat(parts: list[dict]) -> dict:
    return parts[0] if len(parts) == 1 else {k: np.concatenate([p[k] for p in parts]) for k in _REC_FIELDS}


def _rec_take(rec: dict, idx) -> dict:
    return {k: rec[k][idx] for k in _REC_FIELDS}


def _rec_reduce(rec: dict, first: np.ndarray) -> dict:
    """Records grouped at ``first`` (indices of each group's first record) -> one each."""
    last = np.append(first[1:], rec["cid"].size) - 1
    return {"cid": rec["cid"][first], "start": rec["start"][first], "end": rec["end"][last],
            "count": np.add.reduceat(rec["count"], first), "min": np.minimum.reduceat(rec["min"], first),
            "max": np.maximum.reduceat(rec["max"], first), "s1": np.add.reduceat(rec["s1"], first),
            "s2": np.add.reduceat(rec["s2"], first)}


def _zoom_records(rec: dict, scale: float) -> np.ndarray:
    out = np.empty(rec["cid"].size, _ZOOM)
    out["cid"], out["start"], out["end"], out["count"] = rec["cid"], rec["start"], rec["end"], rec["count"]
    np.divide(rec["min"], np.float32(scale), out=out["min"], dtype=np.float32)  # as BigWigWriter._decode
    np.divide(rec["max"], np.float32(scale), out=out["max"], dtype=np.float32)
    np.divide(rec["s1"], scale, out=out["sum"], casting="unsafe")  # float64 quotient, rounded once
    np.divide(rec["s2"], scale * scale, out=out["sumsq"], casting="unsafe")
    return out


class BigWigWriter:
    """Write one bigWig of codes: ``BigWigWriter(path, header)``, then :meth:`add` per
    batch of rows (contigs in header order, positions increasing), then :meth:`close`.

    ``header``: a :class:`Header` (shared by the files of a set) or ``[(name, size),
    ...]``; ``scale``: ``value = code / scale``.
    """

    def __init__(self, path: str, header, scale: float = 255.0):
        self.path = path
        self.header = header if isinstance(header, Header) else Header(header)
        self.scale = float(scale)
        self.lut = np.arange(256, dtype=np.float32) / np.float32(scale)
        nz = len(self.header.reductions)
        self.fh = open(path, "w+b")
        self.fh.write(bytes(64 + 24 * nz))
        self.summary_offset = self.fh.tell()
        self.fh.write(bytes(40))
        self.chrom_tree_offset = self.fh.tell()
        assert self.chrom_tree_offset == self.header.chrom_tree_offset
        self.fh.write(self.header.chrom_tree)
        self.data_offset = self.fh.tell()
        self.fh.write(bytes(8))
        self.leaves: list[np.ndarray] = []
        self.max_block = 0
        self.total = np.zeros(3, np.int64)  # covered bases, sum of codes, sum of squared codes
        self.qmin, self.qmax = 256, -1
        self.zooms: list[_ZoomLevel] = []
        parent = None
        for k in reversed(range(nz)):
            parent = _ZoomLevel(self.header.reductions[k], os.path.dirname(os.path.abspath(path)), parent,
                                self.scale)
            self.zooms.insert(0, parent)

    # --------------------------------------------------------------------- data
    def add(self, lay: Layout, q: np.ndarray) -> int:
        """Add one feature's codes ``q`` (uint8 ``[lay.n]``) over the rows of ``lay``.
        Returns the number of entries written (bedGraph entries + fixed-step values)."""
        n = lay.n
        if n == 0:
            return 0
        start = np.empty(n, bool)
        start[0] = True
        np.not_equal(q[1:], q[:-1], out=start[1:])
        start[lay.block_row] = True  # runs of equal codes within a segment and a cell
        rows = lay.cell_rows
        short = np.count_nonzero(start) * 2 > n  # short runs (noise): sums base by base are cheaper
        if short:  # runs per cell (every cell start is a run start)
            nruns = np.add.reduceat(start.view(np.uint8), lay.cell_row, dtype=np.int64)
        else:
            first = np.flatnonzero(start)
            nruns = np.diff(np.searchsorted(first, lay.cell_row), append=first.size)
        bedgraph = nruns * MIN_MEAN_RUN <= rows
        if short:
            self._summarise_bases(lay, q)
        parts = []
        if bedgraph.any() or not short:
            if short:
                first = np.flatnonzero(start)
            code = q[first]
            if not short:
                self._summarise(lay, first, code)
            if bedgraph.any():
                parts.append(self._bedgraph_sections(lay, first, code, nruns, bedgraph))
        if not bedgraph.all():
            parts.append(self._fixed_sections(lay, q, bedgraph))
        self._write_sections(parts)
        return int(np.where(bedgraph, nruns, rows).sum())

    def _summarise(self, lay: Layout, first: np.ndarray, code: np.ndarray) -> None:
        """First-level zoom records (one per bin) and the total summary, from the runs
        (starting at rows ``first``, codes ``code``), never per base: sums at the bin
        edges from prefix sums over the runs, minimum and maximum over the runs a bin
        overlaps."""
        c = code.astype(np.int64)  # one cast: products of one type are 2x faster
        w = np.diff(first, append=lay.n)
        w *= c  # codes x run lengths
        c1 = np.empty(first.size + 1, np.int64)
        c1[0] = 0
        np.cumsum(w, out=c1[1:])
        w *= c
        c2 = np.empty_like(c1)
        c2[0] = 0
        np.cumsum(w, out=c2[1:])
        r = lay.bin_row
        j = np.searchsorted(first, r, side="right") - 1  # the run holding each bin's first row
        cj = c[j]
        inside = r - first[j]
        s1 = np.diff(c1[j] + cj * inside, append=c1[-1])
        s2 = np.diff(c2[j] + cj * cj * inside, append=c2[-1])
        vmin, vmax = np.minimum.reduceat(code, j), np.maximum.reduceat(code, j)
        # the run holding the next bin's first row also covers the end of this bin if it
        # started before it
        over = np.flatnonzero(first[j[1:]] < r[1:])
        np.minimum.at(vmin, over, code[j[over + 1]])
        np.maximum.at(vmax, over, code[j[over + 1]])
        self._add_bins(lay, vmin, vmax, s1, s2)

    def _summarise_bases(self, lay: Layout, q: np.ndarray) -> None:
        """:meth:`_summarise` when every base is its own run."""
        r = lay.bin_row
        sq = q.astype(np.uint16)
        sq *= sq  # 255 ** 2 fits 16 bits; a multiply is 6x faster than a table look-up
        self._add_bins(lay, np.minimum.reduceat(q, r), np.maximum.reduceat(q, r),
                       np.add.reduceat(q, r, dtype=np.int64), np.add.reduceat(sq, r, dtype=np.int64))

    def _add_bins(self, lay: Layout, vmin, vmax, s1, s2) -> None:
        """First-level zoom records of the bins of ``lay`` (codes' min, max, sums of codes
        and squared codes) to the zoom levels and the total summary."""
        rec = {"cid": lay.bin_cid, "start": lay.bin_start, "end": lay.bin_end, "count": lay.bin_count,
               "min": vmin, "max": vmax, "s1": s1, "s2": s2}
        self.total += (lay.n, int(s1.sum()), int(s2.sum()))
        self.qmin, self.qmax = min(self.qmin, int(vmin.min())), max(self.qmax, int(vmax.max()))
        self.zooms[0].add(rec)

    def _bedgraph_sections(self, lay: Layout, first: np.ndarray, code: np.ndarray, nruns: np.ndarray,
                           bedgraph: np.ndarray) -> dict:
        """The runs (starting at rows ``first``, ``nruns`` per cell) of the bedGraph cells
        as entries, up to :data:`ENTRIES_PER_SECTION` a section. Positions come from the
        segments (each starts a run), not from a gather per run: a run starts at its row
        plus its segment's offset and ends where the next run starts, or with its segment."""
        m = first.size
        items = np.empty(m, _BEDGRAPH)
        cols = items.view(np.uint32).reshape(m, 3)  # computed straight into the entries
        seg_run = np.searchsorted(first, lay.seg_row)
        delta = lay.seg_pos - lay.seg_row
        np.add(first, delta if delta.size == 1 else np.repeat(delta, np.diff(seg_run, append=m)), out=cols[:, 0],
               casting="unsafe")
        cols[:-1, 1] = cols[1:, 0]
        cols[np.append(seg_run[1:], m) - 1, 1] = lay.seg_pos + (lay.seg_end - lay.seg_row)
        self._decode(code, items.view(np.float32).reshape(m, 3)[:, 2])
        if not bedgraph.all():
            keep = np.repeat(bedgraph, nruns)
            first, items, nruns = first[keep], items[keep], nruns[bedgraph]
            cols = items.view(np.uint32).reshape(-1, 3)
        s, e = _split(np.cumsum(nruns) - nruns, nruns, ENTRIES_PER_SECTION)
        return {"row": first[s], "cid": lay.cid(first[s]), "start": cols[s, 0], "end": cols[e - 1, 1],
                "at": s, "count": e - s, "type": _BEDGRAPH_TYPE, "payload": items}

    def _fixed_sections(self, lay: Layout, q: np.ndarray, bedgraph: np.ndarray) -> dict:
        """Fixed-step values of the other cells: a section per contiguous block of a cell."""
        fb = np.flatnonzero(~bedgraph[lay.block_cell])
        a, b = lay.block_row[fb], lay.block_end[fb]
        s, e = _split(a, b - a, FIXED_PER_SLOT)
        return {"row": s, "cid": lay.cid(s), "start": lay.pos[s], "end": lay.pos[s] + (e - s), "count": e - s,
                "at": s, "type": _FIXED_TYPE, "payload": self._decode(q)}

    def _decode(self, q: np.ndarray, out: "np.ndarray | None" = None) -> np.ndarray:
        """Values of codes ``q``: ``q / scale`` in float32 (the same rounding as the
        table ``self.lut``; a division is 5x faster than a look-up by uint8 index)."""
        return np.divide(q, np.float32(self.scale), out=out, dtype=np.float32)

    def _write_sections(self, parts: list[dict]) -> None:
        """Sections of one batch (bedGraph and/or fixed-step) in row order -> blocks."""
        hs = _SECTION.itemsize
        if len(parts) == 1:
            sec = dict(parts[0])
            kind = np.full(sec["row"].size, sec["type"], np.uint8)
        else:
            order = np.argsort(np.concatenate([p["row"] for p in parts]), kind="stable")
            sec = {k: np.concatenate([p[k] for p in parts])[order] for k in ("cid", "start", "end", "at", "count")}
            kind = np.concatenate([np.full(p["row"].size, p["type"], np.uint8) for p in parts])[order]
        head = np.zeros(kind.size, _SECTION)
        head["cid"], head["start"], head["end"], head["count"], head["type"] = (
            sec["cid"], sec["start"], sec["end"], sec["count"], kind)
        fixed = kind == _FIXED_TYPE
        head["step"][fixed] = head["span"][fixed] = 1
        width = np.where(fixed, 4, 12)
        size = hs + width * sec["count"]
        self.max_block = max(self.max_block, int(size.max()))
        heads = head.tobytes()
        payload = {p["type"]: memoryview(p["payload"].view(np.uint8).reshape(-1)) for p in parts}
        blocks = [_deflate(heads[j * hs:(j + 1) * hs] + payload[t][a * w:(a + c) * w])
                  for j, (t, a, c, w) in enumerate(zip(kind.tolist(), sec["at"].tolist(), sec["count"].tolist(),
                                                       width.tolist()))]
        sizes = np.fromiter(map(len, blocks), np.int64, len(blocks))
        leaves = np.zeros(len(blocks), _LEAF)
        leaves["c0"] = leaves["c1"] = head["cid"]
        leaves["s0"], leaves["s1"] = head["start"], head["end"]
        leaves["offset"] = self.fh.tell() + np.cumsum(sizes) - sizes
        leaves["size"] = sizes
        self.fh.write(b"".join(blocks))
        self.leaves.append(leaves)

    # -------------------------------------------------------------------- close
    def close(self) -> None:
        fh = self.fh
        leaves = _cat(self.leaves) if self.leaves else np.zeros(0, _LEAF)
        index_offset = fh.tell()
        _write_rtree(fh, leaves, ENTRIES_PER_SECTION, index_offset)
        self.zooms[0].flush()
        zoom_heads = []
        for z in self.zooms:
            zoom_heads.append(self._write_zoom(z))
        fh.write(struct.pack("<I", BIGWIG_MAGIC))
        # header, zoom headers, summary, data block count
        fh.seek(0)
        fh.write(struct.pack("<IHHQQQHHQQIQ", BIGWIG_MAGIC, 4, len(zoom_heads), self.chrom_tree_offset,
                             self.data_offset, index_offset, 0, 0, 0, self.summary_offset, self.max_block, 0))
        for red, d, i in zoom_heads:
            fh.write(struct.pack("<IIQQ", red, 0, d, i))
        fh.seek(self.summary_offset)
        covered, s1, s2 = (int(x) for x in self.total)
        if covered:
            fh.write(struct.pack("<Qdddd", covered, self.lut[self.qmin], self.lut[self.qmax], s1 / self.scale,
                                 s2 / (self.scale * self.scale)))
        fh.seek(self.data_offset)
        fh.write(struct.pack("<Q", leaves.size))
        fh.close()

    def _write_zoom(self, z: _ZoomLevel) -> tuple[int, int, int]:
        """One level: record count, its blocks (copied from the level's file), R-tree."""
        import shutil

        fh = self.fh
        data_offset = fh.tell()
        fh.write(struct.pack("<I", z.count))
        base = fh.tell()
        z.fh.seek(0)
        shutil.copyfileobj(z.fh, fh, 1 << 22)
        z.fh.close()
        leaves = _cat(z.leaves) if z.leaves else np.zeros(0, _LEAF)
        leaves["offset"] += base
        if z.count:
            self.max_block = max(self.max_block, min(z.count, ITEMS_PER_SLOT) * _ZOOM.itemsize)
        idx = fh.tell()
        _write_rtree(fh, leaves, ITEMS_PER_SLOT, idx)
        return z.reduction, data_offset, idx

    def abort(self) -> None:
        self.fh.close()
        for z in self.zooms:
            z.fh.close()


def _tree_levels(n: int, block: int) -> list[int]:
    """Node counts per level of a tree over ``n`` items, leaves first."""
    levels = [max(1, -(-n // block))]
    while levels[-1] > 1:
        levels.append(-(-levels[-1] // block))
    return levels


def _write_rtree(fh, leaves: np.ndarray, items_per_slot: int, end_of_data: int) -> None:
    """A cirTree over ``leaves`` (sorted blocks) written at the current position."""
    n = leaves.size
    head = struct.pack("<IIQIIIIQII", CIRTREE_MAGIC, BLOCK_SIZE, n,
                       int(leaves["c0"][0]) if n else 0, int(leaves["s0"][0]) if n else 0,
                       int(leaves["c1"][-1]) if n else 0, int(leaves["s1"][-1]) if n else 0,
                       end_of_data, items_per_slot, 0)
    fh.write(head)
    levels = _tree_levels(n, BLOCK_SIZE)
    # items of each level: leaves, then for each upper level the bounds of its children
    items = [leaves]
    for k in range(1, len(levels)):
        child = items[-1]
        firsts = np.arange(0, child.size, BLOCK_SIZE)
        lasts = np.append(firsts[1:], child.size) - 1
        up = np.zeros(firsts.size, _BRANCH)
        up["c0"], up["s0"], up["c1"], up["s1"] = child["c0"][firsts], child["s0"][firsts], child["c1"][lasts], child["s1"][lasts]
        items.append(up)
    # node offsets, root level first
    sizes = [np.diff(np.append(np.arange(0, max(it.size, 1), BLOCK_SIZE), it.size)) for it in items]
    item_bytes = [_LEAF.itemsize] + [_BRANCH.itemsize] * (len(items) - 1)
    offset = fh.tell()
    node_off = [None] * len(items)
    for k in reversed(range(len(items))):
        node_off[k] = offset + np.concatenate(([0], np.cumsum(4 + sizes[k] * item_bytes[k])[:-1]))
        offset += int((4 + sizes[k] * item_bytes[k]).sum())
    for k in range(1, len(items)):
        items[k]["offset"] = node_off[k - 1]
    for k in reversed(range(len(items))):
        it = items[k]
        for j, a in enumerate(range(0, max(it.size, 1), BLOCK_SIZE)):
            chunk = it[a:a + BLOCK_SIZE]
            fh.write(struct.pack("<BBH", int(k == 0), 0, chunk.size) + chunk.tobytes())


def _chrom_tree(names: Sequence[str], sizes: Sequence[int], base: int) -> bytes:
    """The chromosome B+ tree to be written at file offset ``base``: keys sorted bytewise
    (zero-padded), ids in header order."""
    keys = [n.encode() for n in names]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    key_size = max((len(k) for k in keys), default=1) or 1
    block = max(1, min(BLOCK_SIZE, len(keys)))
    out = [struct.pack("<IIIIQQ", BPT_MAGIC, block, key_size, 8, len(keys), 0)]
    padded = [keys[i].ljust(key_size, b"\0") for i in order]
    leaf_items = [k + struct.pack("<II", i, sizes[i]) for k, i in zip(padded, order)]
    firsts = [padded]  # first key of every node, per level
    counts = [len(leaf_items)]
    while counts[-1] > block:
        firsts.append(firsts[-1][::block])
        counts.append(len(firsts[-1]))
    item_size = key_size + 8
    # node offsets per level, root level first
    offset = base + 32  # after the tree's own header
    node_off = {}
    for k in reversed(range(len(counts))):
        n = counts[k]
        offs = []
        for a in range(0, max(n, 1), block):
            offs.append(offset)
            offset += 4 + min(block, n - a) * item_size
        node_off[k] = offs
    for k in reversed(range(len(counts))):
        n = counts[k]
        for a in range(0, max(n, 1), block):
            cnt = min(block, n - a)
            if k == 0:
                body = b"".join(leaf_items[a:a + cnt])
            else:
                body = b"".join(firsts[k][a + i] + struct.pack("<Q", node_off[k - 1][a + i]) for i in range(cnt))
            out.append(struct.pack("<BBH", int(k == 0), 0, cnt) + body)
    return b"".join(out)
