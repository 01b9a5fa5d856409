"""Vectorised text output for calls: BED6 / GFF3 lines built column by column with
numpy (no per-line Python), bgzipped with ISA-L and tabix-indexed from what was
written (no second pass over the file), and a vectorised BED reader.

Segments travel between the calling pass and the writers as *segment files*: flat
binary records (:data:`SEG_DTYPE`) appended as segments close, one file per feature,
in contig-then-start order, read back in blocks (:func:`read_segments`). Memory is
one block whatever the number of segments.

Lines are formatted into a byte matrix, one row per line and fixed columns per field
(numbers right-aligned, strings left-aligned, zero bytes as padding), then the padding
is dropped (the text never holds a zero byte). BGZF (the blocked gzip of the SAM
specification, which bgzip, tabix and htslib read) is written in blocks of 65,280 bytes
deflated by ISA-L, and the ``.tbi`` (the TABIX format of the same specification: per
contig, the bins of the UCSC binning scheme with chunks of virtual offsets, and a
linear index of 16 kb windows) is built from each line's offsets as it is written.
"""

from __future__ import annotations

import os
import struct
import zlib
from typing import Iterator, Optional, Sequence, Union

import numpy as np
import pyarrow as pa

from .errors import GenosegError

try:  # ISA-L: the same deflate streams, ~3x faster than zlib
    from isal.isal_zlib import compress as _compress, crc32 as _crc32
except ImportError:  # pragma: no cover
    from zlib import compress as _compress, crc32 as _crc32

#: One called segment: contig index, 0-based half-open [start, end), sum of the stored
#: codes over the called bases, number of called bases, maximum code.
SEG_DTYPE = np.dtype([("cid", "<i4"), ("start", "<i8"), ("end", "<i8"), ("qsum", "<i8"), ("n", "<i8"),
                      ("qmax", "u1")])

_SEG_ITEM = np.dtype((np.void, SEG_DTYPE.itemsize))  # a record as one opaque item

BLOCK = 1 << 18  # records per block read from a segment file

#: BGZF compression level of the calls BED files: ISA-L level 0 (its single-pass
#: deflate; no slower than level 1, files ~25 % larger on noise calls, which are the
#: only large ones). Not level 1 or 2: their deflate (ISA-L's two-pass "ICF" path)
#: can give other, equally valid, bytes for the same input in another process (seen
#: in ~4 % of fresh interpreters compressing 14 MB of BED text, never with address
#: space randomisation off, never within one process), so reruns gave different
#: ``.bed.gz`` and ``.tbi`` files.
BGZF_LEVEL = 0


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


# ----------------------------------------------------------------------- formatting
class Table:
    """Byte strings looked up by index (contig names, feature names, score texts) as a
    zero-padded matrix."""

    def __init__(self, items: Sequence[Union[str, bytes]]):
        items = [x.encode() if isinstance(x, str) else bytes(x) for x in items]
        self.lens = np.fromiter(map(len, items), np.int64, len(items))
        flat = np.frombuffer(b"".join(items), np.uint8)
        if (flat == 0).any():
            raise GenosegError("a name to be written contains a NUL byte")
        self.mat = np.zeros((len(items), max(int(self.lens.max(initial=0)), 1)), np.uint8)
        row = np.repeat(np.arange(len(items)), self.lens)
        self.mat[row, np.arange(flat.size) - np.repeat(np.cumsum(self.lens) - self.lens, self.lens)] = flat
        self._cells: dict[int, np.ndarray] = {}

    def cells(self, w: int) -> np.ndarray:
        """The first ``w`` bytes of each item as one ``w``-byte item (``[len(items)]``)."""
        if w not in self._cells:
            self._cells[w] = np.ascontiguousarray(self.mat[:, :w]).view(np.dtype((np.void, w))).ravel()
        return self._cells[w]


_POW10 = 10 ** np.arange(20, dtype=np.uint64)
_CACHE_BYTES = 1 << 19  # lines are formatted in pieces of about this many bytes


def iter_lines(fields: Sequence, rows: int) -> Iterator[np.ndarray]:
    """``rows`` text lines made of ``fields`` in order, each one of: ``bytes`` (the same
    in every line), a non-negative integer array (written in decimal) or a pair
    ``(Table, index array)``; yielded as text (uint8) in pieces of whole lines.

    The lines are built in pieces of about :data:`_CACHE_BYTES` in one reused byte
    matrix (every column is written for every piece, so it is never cleared; the
    constant columns only for the first) and each piece, its padding dropped, is
    yielded to be written out while it is in the cache: the text of many lines
    (hundreds of MB on noise) is never held whole."""
    widths = _widths(fields)
    starts = np.cumsum([0] + widths[:-1]).tolist()
    step = max(256, _CACHE_BYTES // max(sum(widths), 1))
    M = np.empty((min(step, rows), sum(widths)), np.uint8)
    for f, a, w in zip(fields, starts, widths):
        if isinstance(f, bytes):
            _cells(M, a, w)[:] = np.frombuffer(f, np.void(w).dtype)[0]
    for r in range(0, rows, step):
        m = M[:min(step, rows - r)]
        looked_up: dict = {}  # a table field repeated in the line is looked up once
        for f, a, w in zip(fields, starts, widths):
            if isinstance(f, tuple) and w:
                key = (id(f[0]), id(f[1]))
                if key not in looked_up:
                    looked_up[key] = _lookup(f[0].cells(w), f[1][r:r + step])
                _cells(m, a, w)[:] = looked_up[key]
            elif not isinstance(f, (bytes, tuple)):
                _put_digits(m, a, w, f[r:r + step])
        yield m[m != 0]  # boolean indexing: faster than np.compress


def _lookup(cells: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``cells[idx]``; one cell when ``idx`` holds one value (one contig, one feature)."""
    if idx.size and idx[0] == idx[-1] and idx.min() == idx.max():
        return cells[idx[0]]
    return cells[idx]


def _widths(fields: Sequence) -> list[int]:
    """Column width of each field: its widest value."""
    widths = []
    for f in fields:
        if isinstance(f, bytes):
            widths.append(len(f))
        elif isinstance(f, tuple):
            widths.append(int(f[0].lens[f[1]].max(initial=0)))
        else:
            widths.append(int(_ndigits(np.max(f, initial=0))))
    return widths


def _ndigits(x) -> Union[int, np.ndarray]:
    """Decimal digits of non-negative integers (1 for 0)."""
    nd = np.searchsorted(_POW10, np.asarray(x, np.uint64), side="right")
    return np.maximum(nd, 1)


def line_lengths(fields: Sequence, rows: int) -> np.ndarray:
    """Length of each line of :func:`iter_lines` (bytes, newline included)."""
    lengths = np.full(rows, sum(len(f) for f in fields if isinstance(f, bytes)), np.int64)
    for f in fields:
        if isinstance(f, tuple):
            lengths += f[0].lens[f[1]]
        elif not isinstance(f, bytes):
            lengths += _ndigits(f)
    return lengths


def _cells(M: np.ndarray, a: int, w: int) -> np.ndarray:
    """Columns ``a .. a + w`` of the C-contiguous byte matrix ``M`` as one ``w``-byte
    item per row (a strided view: copying items is faster than copying columns)."""
    return np.ndarray((M.shape[0],), np.dtype((np.void, w)), M, a, (M.strides[0],))


def _digit_text(k: int, zero: Optional[bytes]) -> np.ndarray:
    """``[10^k, k]`` bytes: each number below 10^k in k digits; with leading zeros
    (``zero`` None) or right-aligned after zero bytes, 0 itself as ``zero``."""
    r = np.arange(10 ** k)
    scale = 10 ** np.arange(k - 1, -1, -1)
    text = (r[:, None] // scale % 10 + 48).astype(np.uint8)
    if zero is not None:
        text *= r[:, None] >= scale
        text[0] = 0
        text[0, k - len(zero):] = np.frombuffer(zero, np.uint8)
    return text


def _items(mat: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(mat).view(np.dtype((np.void, mat.shape[1]))).ravel()


#: 4-digit groups of a number, looked up by ``r + 10000 * (v < 10000)`` for the group
#: ``r = v % 10000`` of what is left ``v`` of the number: rows 0 .. 9999 all 4 digits
#: (``0042``), rows 10000 .. 19999 without leading zeros (zero bytes: the number's
#: first digits; 10000: nothing left, blank, but ``0`` in the number's last group).
#: Keyed by last group, as 4-byte items.
_GROUPS = {last: _items(np.concatenate([_digit_text(4, None), _digit_text(4, b"0" if last else b"")]))
           for last in (False, True)}
#: the first group of k < 4 digits of a longer number (nothing left: blank), left-aligned
#: in 4 bytes (the group after it is written over the rest: 4-byte items copy fast)
_FIRST = {k: _items(np.pad(_digit_text(k, b""), ((0, 0), (0, 4 - k)))) for k in (1, 2, 3)}
#: a whole number of k < 4 digits
_SHORT = {k: _items(_digit_text(k, b"0")) for k in (1, 2, 3)}


def _put_digits(M: np.ndarray, a: int, w: int, x: np.ndarray) -> None:
    """Decimal digits of ``x`` right-aligned in columns ``a .. a + w`` of ``M`` (the
    positions before a number's first digit zero), 4 digits per lookup (3 to 4x fewer
    passes than digit by digit)."""
    x = np.asarray(x)
    big = x.size and int(x.max()) >= 1 << 32
    v = x.astype(np.uint64 if big else np.uint32)
    groups = []  # (column, row, table) of the 4-digit groups, right to left
    for end in range(a + w, a + 3, -4):
        q = v // 10000 if end - 4 > a else None
        r = v - q * 10000 if q is not None else v.copy()  # the first group: all that is left
        r += (v < 10000) * r.dtype.type(10000)
        groups.append((end - 4, r, _GROUPS[end == a + w]))
        v = q
    k = w - 4 * len(groups)  # digits before the groups of 4
    if k and groups:
        _cells(M, a, 4)[:] = _FIRST[k][v]
    elif k:
        _cells(M, a, k)[:] = _SHORT[k][v]
    for col, r, table in reversed(groups):  # left to right: over the first group's tail
        _cells(M, col, 4)[:] = table[r]


def milli_text() -> Table:
    """``"0.000"`` .. ``"1.000"`` indexed by the milli score."""
    return Table([f"{k // 1000}.{k % 1000:03d}" for k in range(1001)])


def prob_text() -> Table:
    """The probability of each code with 3 decimals (``q / 255``, as float32 decodes it)."""
    grid = np.arange(256, dtype=np.float32) / np.float32(255)
    return Table([f"{float(v):.3f}" for v in grid])


def bed_fields(rec: np.ndarray, names: Table, feature: str) -> list:
    """BED6 fields (see :func:`iter_lines`) of segment records: chrom, start, end,
    name = feature, score = round(mean probability x 1000), strand ``.``."""
    return [(names, rec["cid"]), b"\t", rec["start"], b"\t", rec["end"], b"\t" + feature.encode() + b"\t",
            milli_score(rec["qsum"], rec["n"]), b"\t.\n"]


def gff_fields(rec: np.ndarray, f: np.ndarray, ids: np.ndarray, seqids: Table, source: str, types: Table) -> list:
    """GFF3 feature line fields (1-based closed) of segment records of several features:
    ``f`` feature index (into ``types``), ``ids`` 1-based number within the feature."""
    return [(seqids, rec["cid"]), b"\t" + source.encode() + b"\t", (types, f), b"\t", rec["start"] + 1, b"\t",
            rec["end"], b"\t", (_MILLI, milli_score(rec["qsum"], rec["n"])), b"\t.\t.\tID=", (types, f), b"_", ids,
            b";Name=", (types, f), b";max_prob=", (_PROB, rec["qmax"]), b"\n"]


_MILLI, _PROB = milli_text(), prob_text()


# ----------------------------------------------------------------------- BGZF + tabix
BGZF_BLOCK = 0xFF00  # uncompressed bytes per BGZF block, as bgzip
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


def _bgzf_member(raw, level: int) -> bytes:
    """One BGZF block: a gzip member with the ``BC`` extra field giving its size."""
    data = _compress(raw, level, wbits=-15)
    if len(data) > 65536 - 26:  # incompressible: stored
        c = zlib.compressobj(0, zlib.DEFLATED, -15)
        data = c.compress(raw) + c.flush()
    return (struct.pack("<4BI2BH2BHH", 0x1F, 0x8B, 8, 4, 0, 0, 0xFF, 6, 66, 67, 2, len(data) + 25) + data
            + struct.pack("<II", _crc32(raw) & 0xFFFFFFFF, len(raw)))


class BGZFWriter:
    """Write a BGZF file. After :meth:`close`, :meth:`virtual` turns uncompressed
    offsets into virtual offsets (compressed offset of the block << 16 | offset in it)."""

    def __init__(self, path: str, level: int = BGZF_LEVEL):
        self.fh = open(path, "wb")
        self.level = level
        self.pending = b""
        self.sizes: list[int] = []
        self.total = 0  # uncompressed bytes written

    def write(self, data) -> None:
        mv = memoryview(data).cast("B")  # whole blocks are compressed from ``data`` itself
        self.total += len(mv)
        if self.pending:
            k = BGZF_BLOCK - len(self.pending)
            self.pending += bytes(mv[:k])
            if len(self.pending) < BGZF_BLOCK:
                return
            self._blocks(memoryview(self.pending))
            mv = mv[k:]
        full = len(mv) - len(mv) % BGZF_BLOCK
        self._blocks(mv[:full])
        self.pending = bytes(mv[full:])

    def _blocks(self, mv) -> None:
        blocks = [_bgzf_member(mv[a:a + BGZF_BLOCK], self.level) for a in range(0, len(mv), BGZF_BLOCK)]
        self.sizes += map(len, blocks)
        self.fh.write(b"".join(blocks))

    def close(self) -> None:
        if self.pending:
            self._blocks(memoryview(self.pending))
            self.pending = b""
        self.fh.write(BGZF_EOF)
        self.fh.close()

    def virtual(self, u: np.ndarray) -> np.ndarray:
        offsets = np.concatenate(([0], np.cumsum(self.sizes, dtype=np.int64)))
        u = np.asarray(u, np.int64)
        return (offsets[u // BGZF_BLOCK] << 16) | (u % BGZF_BLOCK)


#: the largest position a ``.tbi`` can index (its bins cover 2^29 bp)
TBI_MAX = 1 << 29


_BIN_SPAN = 1 << np.array([14, 17, 20, 23, 26])        # bin sizes, smallest first
_BIN_SHIFT = np.array([14, 17, 20, 23, 26, 62])         # (62: the whole-range bin 0)
_BIN_FIRST = np.array([4681, 585, 73, 9, 1, 0])


def reg2bin(beg: np.ndarray, end: np.ndarray) -> np.ndarray:
    """The UCSC/SAM bin (levels of 2^26 .. 2^14 bp) of each ``[beg, end)``: the
    smallest whose size is above the highest bit where its first and last base differ."""
    beg = np.asarray(beg, np.int64)
    last = np.maximum(np.asarray(end, np.int64), beg + 1) - 1
    level = np.searchsorted(_BIN_SPAN, beg ^ last, side="right")
    return _BIN_FIRST[level] + (beg >> _BIN_SHIFT[level])


class TabixIndexer:
    """The ``.tbi`` of a BED written through a :class:`BGZFWriter`, built from the lines
    as they are written (:meth:`add`); memory grows with the bins and 16 kb windows
    that hold lines, not with the lines."""

    META_BIN = 37450  # per contig: (first, end) virtual offsets and (lines, 0)

    def __init__(self):
        self.chunks: list[np.ndarray] = []   # [contig << 16 | bin, first u, end u] of finished runs
        self.open: Optional[list] = None     # the run of the last lines (may go on)
        self.windows: list[np.ndarray] = []  # [contig << 32 | window, u of the first line over it]
        self.refs: list[np.ndarray] = []     # [contig, first u, end u, lines] per contig piece

    def add(self, ref: np.ndarray, beg: np.ndarray, end: np.ndarray, u0: np.ndarray, u1: np.ndarray) -> None:
        """Lines in file order: contig ids ``ref`` (never decreasing), 0-based ``[beg,
        end)``, uncompressed offsets of their starts ``u0`` and ends ``u1``."""
        if ref.size == 0:
            return
        ref = np.asarray(ref, np.int64)
        # chunks: runs of lines in the same bin
        key = (ref << 16) | reg2bin(beg, end)
        first = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
        last = np.append(first[1:], key.size) - 1
        runs = np.stack([key[first], u0[first], u1[last]], 1)
        if self.open is not None:
            if self.open[0] == runs[0, 0]:
                runs[0, 1] = self.open[1]
            else:
                self.chunks.append(np.array([self.open], np.int64))
        self.chunks.append(runs[:-1])
        self.open = runs[-1].tolist()
        r0 = np.flatnonzero(np.concatenate(([True], ref[1:] != ref[:-1])))
        r1 = np.append(r0[1:], ref.size)
        self.refs.append(np.stack([ref[r0], u0[r0], u1[r1 - 1], r1 - r0], 1))
        # linear index: the first line over each 16 kb window
        w0 = np.asarray(beg, np.int64) >> 14
        nw = ((np.maximum(np.asarray(end, np.int64), beg + 1) - 1) >> 14) - w0 + 1
        line = np.repeat(np.arange(ref.size), nw)
        wkey = (ref[line] << 32) | (w0[line] + np.arange(line.size) - np.repeat(np.cumsum(nw) - nw, nw))
        _, firsts = np.unique(wkey, return_index=True)
        self.windows.append(np.stack([wkey[firsts], u0[line[firsts]]], 1))

    def write(self, path: str, names: Sequence[str], bgzf: BGZFWriter) -> None:
        """Write the ``.tbi`` for the BED columns (UCSC 0-based ``chrom start end``,
        comment ``#``); ``names``: contig names by id; ``bgzf``: the closed writer."""
        if self.open is not None:
            self.chunks.append(np.array([self.open], np.int64))
            self.open = None
        refs = np.concatenate(self.refs) if self.refs else np.zeros((0, 4), np.int64)
        ids, at = np.unique(refs[:, 0], return_index=True)
        ends = np.append(at[1:], refs.shape[0])[:at.size] - 1
        lines = np.add.reduceat(refs[:, 3], at) if at.size else np.zeros(0, np.int64)
        meta_key = (ids << 16) | self.META_BIN
        ch = np.concatenate(self.chunks) if self.chunks else np.zeros((0, 3), np.int64)
        ch = np.concatenate([np.stack([ch[:, 0], bgzf.virtual(ch[:, 1]), bgzf.virtual(ch[:, 2])], 1),
                             np.stack([meta_key, bgzf.virtual(refs[at, 1]), bgzf.virtual(refs[ends, 2])], 1),
                             np.stack([meta_key, lines, np.zeros_like(lines)], 1)])
        ch = ch[np.argsort(ch[:, 0], kind="stable")]  # by contig, bin; file order within a bin
        wk = np.concatenate(self.windows) if self.windows else np.zeros((0, 2), np.int64)
        _, firsts = np.unique(wk[:, 0], return_index=True)  # the first line over a window wins
        wk = wk[firsts]
        body = b"" if ids.size == 0 else _tbi_body(  # no lines: no contigs
            np.searchsorted(ids, ch[:, 0] >> 16), ch[:, 0] & 0xFFFF, ch[:, 1], ch[:, 2],
            np.searchsorted(ids, wk[:, 0] >> 32), wk[:, 0] & 0xFFFFFFFF, bgzf.virtual(wk[:, 1]), ids.size)
        nm = b"".join(names[r].encode() + b"\0" for r in ids.tolist())
        out = BGZFWriter(path)
        out.write(struct.pack("<4s8i", b"TBI\x01", ids.size, 0x10000, 1, 2, 3, ord("#"), 0, len(nm)) + nm + body)
        out.close()


def _tbi_body(cref, cbin, cbeg, cend, wref, wwin, woff, nref: int) -> bytes:
    """The per-contig part of a ``.tbi``: for each contig (0 .. nref - 1) its bins with
    their chunks ``[cbeg, cend)`` (rows sorted by contig, bin), then its linear index:
    windows 0 .. the last with a line, ``woff`` the virtual offset of the first line
    over window ``wwin`` of contig ``wref``; the windows without one take the offset of
    the window before (the contig's first line for those before any). Laid out in
    32-bit words without a loop over contigs."""
    first = np.flatnonzero(np.concatenate(([True], (cref[1:] != cref[:-1]) | (cbin[1:] != cbin[:-1]))))
    nch = np.diff(np.append(first, cref.size))
    bref = cref[first]
    bwords = 2 + 4 * nch
    ref_bwords = np.bincount(bref, weights=bwords, minlength=nref).astype(np.int64)
    nint = np.zeros(nref, np.int64)
    np.maximum.at(nint, wref, wwin + 1)
    rwords = 2 + ref_bwords + 2 * nint
    roff = np.cumsum(rwords) - rwords
    out = np.zeros(int(rwords.sum()), np.uint32)
    out[roff] = np.bincount(bref, minlength=nref)
    bx = np.cumsum(bwords) - bwords
    boff = roff[bref] + 1 + bx - bx[np.searchsorted(bref, bref)]
    out[boff], out[boff + 1] = cbin[first], nch
    coff = np.repeat(boff + 2, nch) + 4 * (np.arange(cref.size) - np.repeat(first, nch))
    for j, v in enumerate((cbeg, cend)):
        out[coff + 2 * j], out[coff + 2 * j + 1] = v & 0xFFFFFFFF, v >> 32
    out[roff + 1 + ref_bwords] = nint
    # every window: its own first line, else the one of the window before
    wbase = np.cumsum(nint) - nint
    val = np.full(int(nint.sum()), -1, np.int64)
    val[wbase[wref] + wwin] = woff
    src = np.where(val >= 0, np.arange(val.size), -1)
    np.maximum.accumulate(src, out=src)
    filled = val[np.maximum(src, 0)]
    lead = src < np.repeat(wbase, nint)  # before the contig's first window with a line
    first_known = woff[np.unique(wref, return_index=True)[1]]  # rows sorted by contig, window
    filled[lead] = first_known[np.repeat(np.arange(nref), nint)[lead]]
    at = np.repeat(roff + 2 + ref_bwords, nint) + 2 * (np.arange(filled.size) - np.repeat(wbase, nint))
    out[at], out[at + 1] = filled & 0xFFFFFFFF, filled >> 32
    return out.tobytes()


def write_bed_gz(seg_path: str, out_path: str, names: Sequence[str], feature: str,
                 table: Optional[Table] = None) -> None:
    """Segment file -> bgzipped BED (``out_path``) + its tabix index (``.tbi``);
    ``names``: contig names by index (``table``: the same as a :class:`Table`)."""
    table = table or Table(names)
    bgzf = BGZFWriter(out_path)
    index = TabixIndexer()
    longest = 0
    for rec in segment_blocks(seg_path):
        fields = bed_fields(rec, table, feature)
        lengths = line_lengths(fields, rec.size)
        u1 = bgzf.total + np.cumsum(lengths)
        index.add(rec["cid"], rec["start"], rec["end"], u1 - lengths, u1)
        longest = max(longest, int(rec["end"].max(initial=0)))
        for text in iter_lines(fields, rec.size):
            bgzf.write(text)
    bgzf.close()
    if longest <= TBI_MAX:
        index.write(out_path + ".tbi", names, bgzf)
    else:  # past what a .tbi can hold (contigs over 512 Mb): htslib's CSI index instead
        import pysam

        pysam.tabix_index(out_path, preset="bed", force=True, csi=True)


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
        # records moved as opaque items: concatenating or indexing the structured dtype
        # goes field by field, ~10x slower
        rec = np.concatenate([p.view(_SEG_ITEM) for p in parts]).view(SEG_DTYPE)
        f, i = np.concatenate(feats), np.concatenate(ids)
        order = np.argsort(key(rec), kind="stable")
        yield rec.take(order), f[order], i[order]


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
