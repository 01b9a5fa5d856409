"""Per-chunk sequence files: a predict task stages only the bases it reads.

``genoseg plan --stage-sequences`` writes ``chunks/chunk_NNNNN.fa.gz`` beside each
chunk file: a BGZF-compressed FASTA (with its ``.fai`` and ``.gzi`` index) holding one
record per part of the chunk. The record is named as the contig and holds the contig's
bases ``[lo, hi)``, where ``"reads": [lo, hi]`` is in that part's entry of the chunk
JSON (0-based, half-open contig coordinates: record position ``i`` is contig position
``lo + i``). ``[lo, hi)`` spans every window the part computes, clipped to the contig,
so N gaps between A/C/G/T runs inside it are kept (they compress to almost nothing).
Each header's description records the plan id, chunk number and offset
(``>chr1 genoseg-chunk plan=<id> chunk=<n> offset=<lo>``), which the reader checks.

``genoseg predict --chunk C.json --sequence chunk_NNNNN.fa.gz`` reads the file through
:class:`ChunkSequence`, which answers ``length(contig)`` and
``fetch_bytes(contig, start, end)`` in contig coordinates exactly as
:class:`genoseg.fasta.Fasta` does, so the predictions are identical to reading the
whole FASTA.
"""

from __future__ import annotations

import gzip
import os

import numpy as np

from .errors import GenosegError

LINE = 100           # bases per FASTA line
BLOCK = 4_000_000    # bases fetched and written at a time (bounded memory); a multiple of LINE
LEVEL = 1            # zlib level: 5x faster than the default, files ~3 % larger


def sequence_filename(chunk: int) -> str:
    return f"chunk_{chunk:05d}.fa.gz"


def _lines(seq: np.ndarray) -> bytes:
    """``seq`` (uint8 bases) as FASTA lines of :data:`LINE` bases."""
    full = seq.size // LINE * LINE
    body = np.concatenate([seq[:full].reshape(-1, LINE), np.full((full // LINE, 1), ord("\n"), np.uint8)], axis=1)
    out = body.tobytes()
    if full < seq.size:
        out += seq[full:].tobytes() + b"\n"
    return out


def stage_chunk(fa, chunk: dict, path: str) -> None:
    """Write the sequence file of ``chunk`` (with its plan id set) read from ``fa`` (a
    :class:`genoseg.fasta.Fasta`) to ``path`` and index it (``.fai``, ``.gzi``)."""
    import pysam
    from pysam.libcbgzf import BGZFile

    with BGZFile(path, f"wb{LEVEL}") as out:
        for part in chunk["parts"]:
            lo, hi = part["reads"]
            out.write(f">{part['contig']} genoseg-chunk plan={chunk['plan_id']} chunk={chunk['chunk']} "
                      f"offset={lo}\n".encode())
            for a in range(lo, hi, BLOCK):
                out.write(_lines(fa.fetch_bytes(part["contig"], a, min(hi, a + BLOCK))))
    pysam.faidx(path)


def stage_chunks(fa, chunks: list[dict], outdir: str) -> None:
    """Stage every chunk's sequence from ``fa`` (an open :class:`genoseg.fasta.Fasta`)
    into ``outdir`` and name it in the chunk (``"sequence_file"``: no directory)."""
    for ch in chunks:
        name = sequence_filename(ch["chunk"])
        stage_chunk(fa, ch, os.path.join(outdir, name))
        ch["sequence_file"] = name


class ChunkSequence:
    """A staged chunk sequence read in contig coordinates (the ``fasta`` argument of
    :func:`genoseg.predict.predict_chunk`).

    Raises :class:`GenosegError` when the file does not belong to the chunk (other
    plan or chunk, records or lengths that differ) and when a read leaves the staged
    range of a contig.
    """

    def __init__(self, path: str, chunk: dict):
        from .fasta import Fasta

        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise GenosegError(f"--sequence {self.path}: file not found")
        self._check_header(chunk)
        self._fa = Fasta(self.path, check_duplicates=False)  # builds .fai/.gzi when missing
        staged = {c.name: c.length for c in self._fa.contigs}
        self._parts = {}
        for part in chunk["parts"]:
            name, (lo, hi) = part["contig"], part.get("reads", (None, None))
            if lo is None or staged.get(name) != hi - lo:
                self._fa.close()
                raise GenosegError(
                    f"{self.path}: holds {staged.get(name, 'no record')} bases of contig {name!r}, chunk "
                    f"{chunk['chunk']} reads {hi - lo if lo is not None else '(no reads entry)'}: not the "
                    f"sequence file of this chunk (use chunks/{sequence_filename(chunk['chunk'])} of the same plan)")
            self._parts[name] = (int(lo), int(hi), int(part["contig_length"]))

    def _check_header(self, chunk: dict) -> None:
        try:
            with gzip.open(self.path, "rt") as fh:
                head = fh.readline()
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise GenosegError(f"--sequence {self.path}: not a staged chunk sequence (bgzipped FASTA): {exc}") from None
        want = f"plan={chunk['plan_id']} chunk={chunk['chunk']} "
        if " genoseg-chunk " not in head or want not in head:
            raise GenosegError(f"--sequence {self.path}: not the sequence file of chunk {chunk['chunk']} of plan "
                               f"{chunk['plan_id']} (its first header is {head.strip()[:200]!r})")

    def length(self, contig: str) -> int:
        """Length of the whole contig (as in the FASTA); ``KeyError`` if not staged."""
        return self._parts[contig][2]

    def fetch_bytes(self, contig: str, start: int, end: int) -> np.ndarray:
        """Bases ``[start, end)`` of ``contig`` (contig coordinates) as ``uint8``; positions
        outside the contig are ``N``, as :meth:`genoseg.fasta.Fasta.fetch_bytes`."""
        lo, hi, n = self._parts[contig]
        a, b = max(start, 0), min(end, n)
        if b > a and (a < lo or b > hi):
            raise GenosegError(f"{self.path}: contig {contig!r} bases {a}..{b} are outside the staged "
                               f"range {lo}..{hi}; the chunk and its sequence file do not match")
        out = np.full(end - start, ord("N"), dtype=np.uint8)
        if b > a:
            out[a - start:b - start] = self._fa.fetch_bytes(contig, a - lo, b - lo)
        return out

    def close(self) -> None:
        self._fa.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
