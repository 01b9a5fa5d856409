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
from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np

from .errors import GenosegError

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
    """An indexed FASTA (plain or bgzipped); builds the index when missing.

    Raises :class:`GenosegError` (naming the file and, where it applies, the contig) for
    a missing or empty file, gzip that is not BGZF, an unnamed contig and duplicate
    contig names.
    """

    def __init__(self, path: str, check_duplicates: bool = True):
        import pysam

        self.path = os.fspath(path)
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
        #: every record name in file order (with check_duplicates): the index leaves out
        #: empty records, which plans list as skipped
        self.record_names: Optional[list[str]] = None
        if check_duplicates:
            names = self.record_names = header_names(self.path)
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
        fai = self.path + ".fai"
        if not os.path.isfile(fai) or os.path.getmtime(fai) < os.path.getmtime(self.path):
            log.info("indexing %s", self.path)
            try:
                pysam.faidx(self.path)
            except Exception as exc:  # pysam raises SamtoolsError / OSError
                raise GenosegError(f"{self.path}: cannot build the FASTA index: {str(exc).strip()}") from None
        try:
            self._fa = pysam.FastaFile(self.path)
        except (OSError, ValueError) as exc:
            raise GenosegError(f"{self.path}: cannot open as indexed FASTA: {exc}") from None
        self.contigs = [Contig(n, int(n_)) for n, n_ in zip(self._fa.references, self._fa.lengths)]
        if not self.contigs:
            raise GenosegError(f"{self.path}: FASTA holds no sequences")
        self._lengths = {c.name: c.length for c in self.contigs}

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

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


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
