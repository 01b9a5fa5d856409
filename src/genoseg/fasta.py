"""Indexed FASTA access, validation and contig selection for genome runs.

Coordinates are 0-based, half-open ``[start, end)`` in bases. Error messages give
positions both ways where a person is likely to look them up (``1-based``).

A FASTA may be plain text or BGZF-compressed (``bgzip``); a ``.fai`` (and ``.gzi``)
index is built beside it with ``pysam.faidx`` when missing. A gzip file that is not
BGZF cannot be indexed and is refused with the command that fixes it.

Validation (:func:`scan_contig`) streams each contig in blocks of
:data:`BLOCK` bases, so memory stays bounded for any contig length, and returns the
runs of A/C/G/T (either case) that the window layout needs.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import shutil
from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np

from .errors import GenosegError
from .outputs import atomic_path, write_error

log = logging.getLogger(__name__)

BLOCK = 4_000_000  # bases read per fetch while scanning a contig

#: IUPAC nucleotide codes (either case) accepted in a FASTA.
IUPAC = "ACGTURYSWKMBDHVN"

_VALID = np.zeros(256, dtype=bool)
_ACGT = np.zeros(256, dtype=bool)
for _b in IUPAC:
    _VALID[ord(_b)] = _VALID[ord(_b.lower())] = True
for _b in "ACGT":
    _ACGT[ord(_b)] = _ACGT[ord(_b.lower())] = True

#: Contigs left out by default: alternate haplotypes, patches, unplaced/unlocalised
#: scaffolds, decoys, EBV and HLA sequences of common human/mouse assemblies.
DEFAULT_EXCLUDE = re.compile(
    r"(_alt$|_random$|_fix$|_decoy$|_hap\d+$|^chrUn|^Un_|^(chr)?EBV$|^HLA-|^hs37d5$"
    r"|^(GL|KI|JH|KN|KV|KZ|ML|MU|MT_?)\d+(\.\d+)?$)"
)


@dataclass(frozen=True)
class Contig:
    name: str
    length: int


def _is_gzip(path: str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _is_bgzf(path: str) -> bool:
    """BGZF blocks are gzip members with an extra field ``BC`` (RFC 1952 + SAM spec)."""
    with open(path, "rb") as fh:
        head = fh.read(18)
    return (len(head) >= 18 and head[:4] == b"\x1f\x8b\x08\x04"
            and head[12:14] == b"BC")


def _open_text(path: str):
    return gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb")


def header_names(path: str) -> list[str]:
    """Contig names in file order (first word of each ``>`` line), streaming the file.

    Used to catch duplicate names, which ``faidx`` silently drops.
    """
    names: list[str] = []
    pending = b""          # unfinished line that starts with '>'
    at_line_start = True   # does the next block start a new line?
    rx = re.compile(rb"(?m)^>([^\n]*)\n")
    with _open_text(path) as fh:
        while True:
            block = fh.read(1 << 24)
            if not block:
                break
            data = pending + block
            if not at_line_start and not pending:
                nl = data.find(b"\n")
                if nl < 0:
                    continue
                data = data[nl + 1:]
            last_nl = data.rfind(b"\n")
            complete, rest = data[:last_nl + 1], data[last_nl + 1:]
            for m in rx.finditer(complete):
                words = m.group(1).split(None, 1)
                names.append(words[0].decode("utf-8", "replace") if words else "")
            pending = rest if rest.startswith(b">") else b""
            at_line_start = not rest
    if pending:
        words = pending[1:].split(None, 1)
        names.append(words[0].decode("utf-8", "replace") if words else "")
    return names


class Fasta:
    """An indexed FASTA (plain or bgzipped).

    The index (``.fai``, plus ``.gzi`` for BGZF) is ``fai``/``gzi`` when given (never
    rebuilt), else the one beside the FASTA when it is at least as new as the file, else
    one in ``index_dir``; a missing or older index is built beside the FASTA when that
    directory is writable, otherwise in ``index_dir`` (or a temporary directory removed
    on :meth:`close`): a read-only reference directory is never written to. Whatever
    its source, the index is checked against the file (:func:`verify_index`, a few bytes
    read per record) and refused with the fix when they disagree.

    ``contigs`` lists the records in file order with their lengths; with
    ``check_duplicates`` (a pass over the headers) it also lists records that have a
    header but no sequence, with length 0 (faidx leaves them out).

    Raises :class:`GenosegError` (naming the file and, where it applies, the contig and
    line) for a missing or empty file, gzip that is not BGZF, an unnamed contig,
    duplicate contig names, a layout faidx cannot index, and an index that does not
    describe the file.
    """

    def __init__(self, path: str, check_duplicates: bool = True, fai: Optional[str] = None,
                 gzi: Optional[str] = None, index_dir: Optional[str] = None):
        import pysam

        self.path = os.fspath(path)
        self._tmpdir: Optional[str] = None
        if not os.path.isfile(self.path):
            raise GenosegError(f"FASTA not found: {self.path}")
        if os.path.getsize(self.path) == 0:
            raise GenosegError(f"{self.path}: FASTA file is empty")
        if _is_gzip(self.path) and not _is_bgzf(self.path):
            raise GenosegError(
                f"{self.path}: gzip-compressed but not BGZF, so it cannot be indexed; "
                f"decompress it (`gunzip {self.path}`, or `genoseg prepare --fasta {self.path} --out genome.fa`) "
                f"or recompress it with bgzip (`gunzip -c {self.path} | bgzip > genome.fa.gz`)"
            )
        names: Optional[list[str]] = None
        if check_duplicates:
            names = header_names(self.path)
            if not names:
                raise GenosegError(f"{self.path}: no FASTA records ('>' header lines) found")
            seen: set[str] = set()
            for i, n in enumerate(names):
                if not n:
                    raise GenosegError(f"{self.path}: record {i + 1} has an empty name after '>'")
                if n in seen:
                    raise GenosegError(
                        f"{self.path}: duplicate contig name {n!r} (record {i + 1}); contig names must be unique")
                seen.add(n)
        self.fai, self.gzi, origin = self._find_index(fai, gzi, index_dir)
        try:
            self._fa = pysam.FastaFile(self.path, filepath_index=self.fai, filepath_index_compressed=self.gzi)
        except (OSError, ValueError) as exc:
            raise GenosegError(f"{self.path}: cannot open as indexed FASTA with the index {self.fai}: {exc}") from None
        records = read_fai(self.fai)
        try:
            verify_index(self.path, self.fai, self.gzi, records, origin == "given")
        except GenosegError:
            self.close()
            if origin == "built":  # faidx accepted a layout it reads wrongly (e.g. spaces)
                for p in (self.fai, self.gzi):
                    if p and os.path.isfile(p):
                        os.remove(p)
                check_layout(self.path)
            raise
        lengths = {r[0]: r[1] for r in records}
        order = names if names is not None else list(lengths)
        # records with a header but no sequence (faidx leaves them out) have length 0
        self.contigs = [Contig(n, lengths.get(n, 0)) for n in order]
        if not any(c.length for c in self.contigs):
            raise GenosegError(f"{self.path}: FASTA holds no sequences")
        self._lengths = {c.name: c.length for c in self.contigs}

    def _find_index(self, fai, gzi, index_dir) -> tuple[str, Optional[str], str]:
        """``(fai, gzi, origin)``, origin ``given``, ``found`` or ``built`` (now)."""
        bgzf = _is_bgzf(self.path)
        if fai is not None:
            if not os.path.isfile(fai):
                raise GenosegError(f"--fai {fai}: file not found")
            if bgzf:
                gzi = gzi or next((g for g in (self.path + ".gzi", fai[:-4] + ".gzi" if fai.endswith(".fai") else None)
                                   if g and os.path.isfile(g)), None)
                if gzi is None:
                    raise GenosegError(f"{self.path} is bgzipped: give its .gzi index with --gzi too "
                                       f"(`samtools faidx {self.path} --fai-idx {fai} --gzi-idx {fai[:-4]}.gzi`)")
            return fai, gzi if bgzf else None, "given"
        if gzi is not None:
            raise GenosegError("--gzi needs --fai (the .gzi alone does not index the FASTA)")
        base = os.path.basename(self.path)
        places = [os.path.dirname(os.path.abspath(self.path))] + ([index_dir] if index_dir else [])
        for d in places:
            f = os.path.join(d, base + ".fai")
            g = os.path.join(d, base + ".gzi") if bgzf else None
            if _fresh(f, self.path) and (g is None or _fresh(g, self.path)):
                return f, g, "found"
        target = next((d for d in places if write_error(d) is None), None)
        if target is None:
            import tempfile

            self._tmpdir = target = tempfile.mkdtemp(prefix="genoseg-fai-")
        if target != places[0]:
            log.warning("%s: cannot write its index beside it (read-only directory); building it in %s "
                        "(pass --fai to use an index you keep)", self.path, target)
        f = os.path.join(target, base + ".fai")
        g = os.path.join(target, base + ".gzi") if bgzf else None
        build_index(self.path, f, g)
        return f, g, "built"
    def length(self, contig: str) -> int:
        return self._lengths[contig]

    def fetch_bytes(self, contig: str, start: int, end: int) -> np.ndarray:
        """Bases ``[start, end)`` of ``contig`` as ``uint8`` ASCII codes; positions
        outside ``[0, length)`` are returned as ``N`` (padding at contig ends)."""
        n = self._lengths[contig]
        out = np.full(end - start, ord("N"), dtype=np.uint8)
        a, b = max(start, 0), min(end, n)
        if b > a:
            s = self._fa.fetch(contig, a, b)
            if len(s) != b - a:
                raise GenosegError(
                    f"{self.path}: contig {contig!r}: read {len(s)} bases at {a}..{b}, expected {b - a}; "
                    f"the file has characters faidx cannot read, or a stale index (delete {self.path}.fai)")
            out[a - start:b - start] = np.frombuffer(s.encode("ascii", "replace"), dtype=np.uint8)
        return out

    def close(self) -> None:
        self._fa.close()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------- index
FAI_FIX = "delete it (genoseg builds a new one) or rebuild it: `samtools faidx {0}`"


def _fresh(index: str, fasta: str) -> bool:
    return os.path.isfile(index) and os.path.getmtime(index) >= os.path.getmtime(fasta)


def build_index(path: str, fai: str, gzi: Optional[str] = None) -> None:
    """Build ``fai`` (and ``gzi`` for BGZF) with htslib, written under temporary names
    and renamed (:func:`genoseg.outputs.atomic_path`), so a killed run never leaves a
    truncated index. A file htslib cannot index is diagnosed by :func:`check_layout`
    (file, contig, line and the fix)."""
    import contextlib

    import pysam

    log.info("indexing %s -> %s", path, fai)
    verbosity = pysam.set_verbosity(0)  # htslib's own words would precede ours on stderr
    try:
        with contextlib.ExitStack() as stack:
            tmp_fai = stack.enter_context(atomic_path(fai, overwrite=True))
            tmp_gzi = stack.enter_context(atomic_path(gzi, overwrite=True)) if gzi else None
            try:
                pysam.faidx(path, "--fai-idx", tmp_fai, *(["--gzi-idx", tmp_gzi] if gzi else []))
            except Exception as exc:  # pysam raises SamtoolsError / OSError
                check_layout(path)  # raises the precise error when the layout is the cause
                raise GenosegError(f"{path}: cannot build the FASTA index: {str(exc).strip()}") from None
            if not os.path.getsize(tmp_fai):
                check_layout(path)
                raise GenosegError(f"{path}: the FASTA index came out empty")
    finally:
        pysam.set_verbosity(verbosity)


def read_fai(path: str) -> list[tuple[str, int, int, int, int]]:
    """``(name, length, offset, line bases, line width)`` per record of a ``.fai``."""
    out = []
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            f = line.rstrip(b"\r\n").split(b"\t")
            try:
                name = f[0].decode()
                out.append((name, int(f[1]), int(f[2]), int(f[3]), int(f[4])))
            except (IndexError, ValueError, UnicodeDecodeError):
                raise GenosegError(f"{path}:{lineno}: not a FASTA index line (name, length, offset, "
                                   "line bases, line width)") from None
    return out


class _Bytes:
    """Random access to the (uncompressed) bytes of a plain or BGZF FASTA: ``read(offset,
    n)``; BGZF blocks are found with the ``.gzi`` and inflated one at a time."""

    def __init__(self, path: str, gzi: Optional[str]):
        import mmap

        self._fh = open(path, "rb")
        self._mm = None
        if gzi is None:
            self.size = os.fstat(self._fh.fileno()).st_size
            self._mm = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ) if self.size else b""
            return
        raw = np.fromfile(gzi, dtype="<u8")
        if raw.size < 1 or raw.size != 1 + 2 * int(raw[0]):
            raise GenosegError(f"{gzi}: not a BGZF .gzi index")
        pairs = raw[1:].reshape(-1, 2)
        self._coff = np.concatenate([[0], pairs[:, 0]]).astype(np.int64)
        self._uoff = np.concatenate([[0], pairs[:, 1]]).astype(np.int64)
        self._cache: dict[int, bytes] = {}
        last = self._inflate(len(self._coff) - 1)
        self.size = int(self._uoff[-1]) + len(last)

    def _inflate(self, i: int) -> bytes:
        import zlib

        if i not in self._cache:
            if len(self._cache) > 64:
                self._cache.clear()
            self._fh.seek(int(self._coff[i]))
            head = self._fh.read(18)
            bsize = int.from_bytes(head[16:18], "little") + 1
            body = self._fh.read(bsize - 18)
            self._cache[i] = zlib.decompress(body[:-8], -15) if len(head) == 18 else b""
        return self._cache[i]

    def read(self, offset: int, n: int) -> bytes:
        offset, end = max(0, offset), min(self.size, offset + n)
        if end <= offset:
            return b""
        if self._mm is not None:
            return bytes(self._mm[offset:end])
        out = []
        i = int(np.searchsorted(self._uoff, offset, side="right")) - 1
        while offset < end:
            block = self._inflate(i)
            a = offset - int(self._uoff[i])
            take = block[a:a + end - offset]
            if not take:
                break
            out.append(take)
            offset += len(take)
            i += 1
        return b"".join(out)

    def close(self) -> None:
        if self._mm:
            self._mm.close()
        self._fh.close()


def verify_index(path: str, fai: str, gzi: Optional[str], records: list, given: bool = False) -> None:
    """Check cheaply that ``fai`` describes ``path``: for each record, the header line
    ending at its offset names it, its lines have the indexed width, and its last base
    is followed by a line end and then only blank or header-only lines up to the next
    indexed record (or the end of the file). A few bytes are read per record, so an
    index left from another version of the file (a contig renamed, lengthened,
    shortened, added) is caught without reading the sequence."""
    fix = ("rebuild it (`samtools faidx {0} --fai-idx {1}`) or leave out --fai" if given else FAI_FIX).format(path, fai)
    raw = _Bytes(path, gzi)
    try:
        starts = [_header_start(raw, r[2]) for r in records]
        for k, (name, length, offset, lb, lw) in enumerate(records):
            line = raw.read(starts[k], offset - starts[k]).rstrip(b"\r\n")
            words = line[1:].split(None, 1) if line.startswith(b">") else []
            if not words or words[0].decode("utf-8", "replace") != name:
                got = line[:60].decode("utf-8", "replace") if line else "no header line"
                raise GenosegError(f"{path}: its index {fai} does not match it: the index puts contig {name!r} "
                                   f"at byte {offset}, the file has {got!r} there; {fix}")
            nxt = starts[k + 1] if k + 1 < len(records) else raw.size
            _check_record_end(raw, path, fai, name, length, offset, lb, lw, nxt, fix)
    finally:
        raw.close()


def _header_start(raw: "_Bytes", offset: int) -> int:
    """Start of the line that ends just before ``offset`` (a record's header)."""
    look = 256
    while True:
        a = max(0, offset - look)
        buf = raw.read(a, offset - a)
        nl = buf.rfind(b"\n", 0, max(0, len(buf) - 1))
        if nl >= 0:
            return a + nl + 1
        if a == 0:
            return 0
        look *= 4


def _check_record_end(raw, path, fai, name, length, offset, lb, lw, nxt, fix) -> None:
    if length == 0 or lb <= 0 or lw < lb:
        raise GenosegError(f"{path}: its index {fai} has an impossible entry for {name!r}; {fix}")
    eol = lw - lb  # 1 for \n, 2 for \r\n
    if length > lb and raw.read(offset + lb, eol) != b"\r\n"[2 - eol:]:
        raise GenosegError(f"{path}: its index {fai} does not match it: the lines of contig {name!r} are not "
                           f"{lb} bases long as the index says; {fix}")
    n = length - 1
    last = offset + (n // lb) * lw + n % lb  # byte of the last base
    gap = raw.read(last, min(nxt - last, 1 << 20)) if nxt > last else b""
    ok = len(gap) >= 1 and gap[:1] not in (b"\n", b"\r", b">") and \
        all(not ln.strip() or ln.startswith(b">") for ln in gap[1:].replace(b"\r", b"").split(b"\n")[1:]) and \
        gap[1:2] in (b"\n", b"\r", b"")
    if not ok or nxt - last > 1 << 20:
        raise GenosegError(f"{path}: its index {fai} does not match it: contig {name!r} does not end after "
                           f"{length:,} bases as the index says (the FASTA was changed after it was indexed); {fix}")


def check_layout(path: str) -> None:
    """Raise :class:`GenosegError` naming the file, line and contig of the first layout
    faidx cannot index: carriage-return-only line ends, a blank line inside a record,
    lines of a record that differ in length (only the last may be shorter), whitespace
    inside sequence lines, sequence before the first header, a header without sequence at the end of the file. Streams
    the file; returns when none is found. Used when indexing fails."""
    fix_wrap = (f"rewrite it with one line length, e.g. `genoseg prepare --fasta {path} --out fixed.fa` "
                "(or `seqkit seq -w 60`)")
    with _open_text(path) as fh:
        head = fh.read(1 << 16)
    if b"\r" in head and b"\n" not in head:
        raise GenosegError(f"{path}: lines end with carriage returns only (old Mac format), which faidx cannot "
                           f"index; convert them, e.g. `genoseg prepare --fasta {path} --out fixed.fa` "
                           "(or `tr '\\r' '\\n'`)")
    name, header_line, lb, short, blank_at, nseq = None, 0, None, None, None, 0
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip(b"\n").rstrip(b"\r")
            if line.startswith(b">"):
                name, header_line, lb, short, blank_at, nseq = (
                    (line[1:].split(None, 1) or [b""])[0].decode("utf-8", "replace"), lineno, None, None, None, 0)
                continue
            if not line:
                blank_at = blank_at or lineno
                continue
            if name is None:
                raise GenosegError(f"{path}: line {lineno}: sequence before the first '>' header line")
            space = re.search(rb"\s", line)
            if space:
                raise GenosegError(f"{path}: contig {name!r} (header on line {header_line}), line {lineno}, column "
                                   f"{space.start() + 1}: whitespace inside the sequence; remove it "
                                   f"(e.g. `tr -d ' \\t'` on the sequence lines)")
            if blank_at is not None and nseq:
                raise GenosegError(f"{path}: contig {name!r} (header on line {header_line}): blank line {blank_at} "
                                   f"inside the sequence, which faidx cannot index; remove blank lines "
                                   f"(`genoseg prepare --fasta {path} --out fixed.fa`, or `sed '/^$/d'`)")
            if lb is not None and (short is not None or len(line) > lb):
                bad, n = short if short is not None else (lineno, len(line))
                raise GenosegError(f"{path}: contig {name!r} (header on line {header_line}), line {bad}: {n} bases "
                                   f"where the lines before it have {lb}; faidx needs every line of a record but "
                                   f"the last to have the same length: {fix_wrap}")
            if lb is None:
                lb = len(line)
            elif len(line) < lb:
                short = (lineno, len(line))
            nseq += 1
    if name is not None and nseq == 0:
        raise GenosegError(f"{path}: contig {name!r} (line {header_line}) has a header but no sequence at the end of "
                           f"the file, which faidx cannot index; delete that header line (or add its sequence)")


class _Rewrapper:
    """Writes sequence bytes as lines of ``width`` (numpy reshapes, no per-line loop)."""

    def __init__(self, out, width: int):
        self.out, self.width, self.col = out, width, 0

    def write(self, seq: bytes) -> None:
        w = self.width
        if self.col:
            head, seq = seq[:w - self.col], seq[w - self.col:]
            self.out.write(head)
            self.col += len(head)
            if self.col < w:
                return
            self.out.write(b"\n")
            self.col = 0
        full = len(seq) // w * w
        if full:
            rows = np.frombuffer(seq[:full], np.uint8).reshape(-1, w)
            self.out.write(np.hstack([rows, np.full((rows.shape[0], 1), 10, np.uint8)]).tobytes())
        if len(seq) > full:
            self.out.write(seq[full:])
            self.col = len(seq) - full

    def end_line(self) -> None:
        if self.col:
            self.out.write(b"\n")
            self.col = 0


def normalise(src, out, width: int = 60) -> dict:
    """Copy FASTA bytes from the binary stream ``src`` to ``out`` in the layout faidx
    indexes: ``\n`` line ends (CR-LF and CR-only converted), no blank lines, sequence
    rewrapped to ``width`` bases per line, records with a header but no sequence left out.
    Streams in blocks (memory bounded). Returns ``{"records", "bases", "dropped": [names]}``."""
    header_rx = re.compile(rb"(?m)^>[^\n]*")
    wrap = _Rewrapper(out, width)
    header: Optional[bytes] = None  # of the record being copied, written with its first base
    stats = {"records": 0, "bases": 0, "dropped": []}
    pending, carry_cr = b"", False

    def sequence(text: bytes) -> None:
        nonlocal header
        seq = text.replace(b"\n", b"")
        if not seq:
            return
        if header is None:
            raise GenosegError("sequence before the first '>' header line")
        if header:
            wrap.end_line()
            out.write(header + b"\n")
            stats["records"] += 1
            header = b""  # written
        wrap.write(seq)
        stats["bases"] += len(seq)

    def new_header(line: bytes) -> None:
        nonlocal header
        if header:  # the previous record had no sequence
            stats["dropped"].append((header[1:].split(None, 1) or [b""])[0].decode("utf-8", "replace"))
        header = line.rstrip()

    while True:
        raw = src.read(1 << 24)
        eof = not raw
        block = (b"\r" if carry_cr else b"") + raw
        carry_cr = not eof and block.endswith(b"\r")  # a CR-LF may be split between blocks
        if carry_cr:
            block = block[:-1]
        data = pending + block.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        cut = len(data) if eof else data.rfind(b"\n") + 1
        complete, pending = data[:cut], data[cut:]
        pos = 0
        for m in header_rx.finditer(complete):
            sequence(complete[pos:m.start()])
            new_header(m.group())
            pos = m.end()
        sequence(complete[pos:])
        if eof:
            break
    if header:
        stats["dropped"].append((header[1:].split(None, 1) or [b""])[0].decode("utf-8", "replace"))
    wrap.end_line()
    return stats


def scan_contig(fasta: Fasta, contig: str, block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Validate a contig and return its A/C/G/T runs as ``(starts, ends)`` (int64,
    0-based half-open, sorted, maximal).

    Raises :class:`GenosegError` naming the file, contig and position of the first
    character that is not an IUPAC nucleotide code.
    """
    n = fasta.length(contig)
    starts: list[np.ndarray] = []
    ends: list[np.ndarray] = []
    prev = np.int8(0)  # is the base before this block A/C/G/T?
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        raw = fasta.fetch_bytes(contig, lo, hi)
        bad = np.flatnonzero(~_VALID[raw])
        if bad.size:
            raise _not_iupac(fasta, contig, lo + int(bad[0]), raw[bad[0]])
        m = _ACGT[raw].view(np.int8)
        d = np.diff(m, prepend=prev)
        starts.append(np.flatnonzero(d == 1) + lo)
        ends.append(np.flatnonzero(d == -1) + lo)
        prev = m[-1]
    if prev:
        ends.append(np.array([n]))
    if not starts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    s = np.concatenate(starts).astype(np.int64)
    e = np.concatenate(ends).astype(np.int64)
    assert s.size == e.size, "run bookkeeping"
    return s, e


def _not_iupac(fasta: Fasta, contig: str, p: int, code: int) -> GenosegError:
    return GenosegError(f"{fasta.path}: contig {contig!r}, position {p} (0-based; {p + 1} 1-based): "
                        f"{chr(code)!r} is not an IUPAC nucleotide code ({IUPAC}, either case)")


def scan_contigs(fasta: Fasta, contigs: list[str], block: int = BLOCK) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`scan_contig` of each contig, in order. Contigs shorter than ``block`` are
    read and checked in batches of about ``block`` bases (one vectorised pass per batch,
    contigs separated by a byte that ends any run), so 10^5 scaffolds cost about what
    one contig of the same total length does."""
    out: list = [None] * len(contigs)
    batch: list[tuple[int, str, int]] = []

    def flush():
        seqs = [fasta.fetch_bytes(c, 0, n) for _, c, n in batch]
        sizes = np.array([n + 1 for _, _, n in batch], np.int64)
        first = np.concatenate([[0], np.cumsum(sizes)])  # start of each contig in the batch
        raw = np.zeros(int(first[-1]), np.uint8)  # separators stay 0
        for (_, _, n), seq, a in zip(batch, seqs, first[:-1].tolist()):
            raw[a:a + n] = seq
        ok = _VALID[raw]
        ok[first[1:] - 1] = True
        bad = np.flatnonzero(~ok)
        if bad.size:
            k = int(np.searchsorted(first, bad[0], side="right")) - 1
            raise _not_iupac(fasta, batch[k][1], int(bad[0] - first[k]), raw[bad[0]])
        d = np.diff(_ACGT[raw].view(np.int8), prepend=np.int8(0))
        rs, re_ = np.flatnonzero(d == 1), np.flatnonzero(d == -1)  # every run ends at a separator at the latest
        i0 = np.searchsorted(rs, first[:-1])
        i1 = np.searchsorted(rs, first[1:])
        for (i, _, _), a, j0, j1 in zip(batch, first[:-1].tolist(), i0.tolist(), i1.tolist()):
            out[i] = (rs[j0:j1].astype(np.int64) - a, re_[j0:j1].astype(np.int64) - a)
        batch.clear()

    pending = 0
    for i, c in enumerate(contigs):
        n = fasta.length(c)
        if n >= block:
            out[i] = scan_contig(fasta, c, block)
            continue
        batch.append((i, c, n))
        pending += n
        if pending >= block:
            flush()
            pending = 0
    if batch:
        flush()
    return out


def select_contigs(contigs: Iterable[Contig], names: Optional[list[str]] = None,
                   regex: Optional[str] = None, min_length: int = 1,
                   fasta_path: str = "") -> tuple[list[Contig], list[dict]]:
    """Choose the contigs of a run.

    Default: every contig not matching :data:`DEFAULT_EXCLUDE` (primary chromosomes of
    common assemblies). ``names`` (exact list, in the given order) or ``regex``
    (``re.search``) replace the default. Contigs shorter than ``min_length`` are
    left out. Returns ``(used, skipped)``; each skipped entry is
    ``{"name", "length", "reason"}``.
    """
    contigs = list(contigs)
    by_name = {c.name: c for c in contigs}
    used: list[Contig] = []
    skipped: list[dict] = []
    if names:
        missing = [n for n in names if n not in by_name]
        if missing:
            raise GenosegError(f"{fasta_path}: --contigs names not in the FASTA: {', '.join(map(repr, missing))}")
        chosen = set(names)
        for c in contigs:
            if c.name not in chosen:
                skipped.append({"name": c.name, "length": c.length, "reason": "not in --contigs"})
        candidates = [by_name[n] for n in dict.fromkeys(names)]
    elif regex:
        try:
            rx = re.compile(regex)
        except re.error as exc:
            raise GenosegError(f"--contig-regex {regex!r}: {exc}") from None
        candidates = []
        for c in contigs:
            (candidates.append(c) if rx.search(c.name) else
             skipped.append({"name": c.name, "length": c.length, "reason": "does not match --contig-regex"}))
    else:
        candidates = []
        for c in contigs:
            (skipped.append({"name": c.name, "length": c.length,
                             "reason": "not a primary chromosome (default selection; use --contigs or --contig-regex)"})
             if DEFAULT_EXCLUDE.search(c.name) else candidates.append(c))
    for c in candidates:
        if c.length < max(1, min_length):
            skipped.append({"name": c.name, "length": c.length,
                            "reason": f"shorter than --min-contig-length {min_length}" if c.length else "empty sequence"})
        else:
            used.append(c)
    return used, skipped
