"""Streaming the predictions store as *frames* of stored ``uint8`` codes, for the CPU
stages after predict (calling, tracks, report).

A frame is a few hundred thousand consecutive rows of the dataset (dataset order:
contigs in FASTA order, positions increasing) that may span several contigs, so that
the work per frame — and hence the time of a stage — grows with the number of bases,
not with the number of contigs (10^5 scaffolds cost no more than one contig of the same
total length). Values stay the stored codes ``q`` (``p = q / 255``): thresholds are
compared on codes, never on decoded floats.

Reading goes through :func:`genoseg.store.iter_codes` (contig after contig: each
shared row group is decoded once).
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, Mapping, Optional, Sequence

import numpy as np

from . import store
from .errors import GenosegError

#: Rows per frame (the last frame of a dataset may be shorter).
FRAME_ROWS = 1 << 18


@dataclasses.dataclass
class Frame:
    """Rows of one or more consecutive contigs.

    pos: int64 ``[n]``, 0-based positions (increasing within each contig).
    codes: uint8 ``[F, n]`` (C order), one row per requested feature.
    piece_cid: int32 ``[k]``, contig index (into the ``contigs`` list streamed) of each
        piece; piece_len: int64 ``[k]`` rows of each piece (a contig may continue into
        the next frame: then it is the last piece here and the first piece there).
    """

    pos: np.ndarray
    codes: np.ndarray
    piece_cid: np.ndarray
    piece_len: np.ndarray

    @property
    def n(self) -> int:
        return int(self.pos.size)

    def row_cid(self) -> np.ndarray:
        """Contig index of every row (int32 ``[n]``)."""
        return np.repeat(self.piece_cid, self.piece_len)


def _contig_batches(dataset: str, contig: str, features: Sequence[str], batch_rows: int
                    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(pos int64 [n], codes uint8 [F, n])`` batches of one contig (zero-copy views of
    the store's column-major codes)."""
    for pos, codes in store.iter_codes(dataset, contig, features=list(features), batch_rows=batch_rows):
        yield np.asarray(pos, np.int64), codes.T


def iter_frames(dataset: str, contigs: Sequence[str], features: Sequence[str],
                frame_rows: Optional[int] = None, align: Optional[int] = None) -> Iterator[Frame]:
    """Frames of about ``frame_rows`` rows over ``contigs`` (in that order), reading only
    the columns of ``features``. Small contigs are packed together; a long contig is cut
    into several frames. With ``align`` (< ``frame_rows``), a contig is cut only before a
    position in another aligned tile of ``align`` bp than the row before it: no frame
    splits a tile, so what is computed per tile does not depend on ``frame_rows``."""
    frame_rows = int(frame_rows or FRAME_ROWS)
    if align is not None and not 0 < align < frame_rows:
        raise ValueError(f"align={align} must be positive and below frame_rows={frame_rows}")
    pend: list[tuple[int, np.ndarray, np.ndarray]] = []
    npend = 0

    def flush(next_cid: int = -1, next_pos: int = -1) -> Frame:
        """The pending rows as a frame; with ``align``, the rows of the tile that continues
        at ``next_pos`` on contig ``next_cid`` stay pending."""
        nonlocal pend, npend
        carry = []
        if align is not None:
            tile = next_pos // align
            while pend and pend[-1][0] == next_cid and pend[-1][1][-1] // align == tile:
                cid, pos, codes = pend.pop()
                cut = int(np.searchsorted(pos // align, tile))
                carry.insert(0, (cid, pos[cut:], codes[:, cut:]))
                if cut:
                    pend.append((cid, pos[:cut], codes[:, :cut]))
                    break
        if len(pend) == 1:
            _, pos, codes = pend[0]
        else:
            pos = np.concatenate([p for _, p, _ in pend])
            codes = np.concatenate([c for _, _, c in pend], axis=1)
        cids = np.array([c for c, _, _ in pend], np.int32)
        lens = np.array([p.size for _, p, _ in pend], np.int64)
        if cids.size > 1:  # pieces of one contig (read in several batches) are one piece
            first = np.flatnonzero(np.concatenate(([True], cids[1:] != cids[:-1])))
            cids, lens = cids[first], np.add.reduceat(lens, first)
        pend, npend = carry, sum(p.size for _, p, _ in carry)
        return Frame(pos, codes, cids, lens)

    full = False
    for cid, contig in enumerate(contigs):
        # whole row groups: a frame then ends inside a batch, where the next row is known
        for pos, codes in _contig_batches(dataset, contig, features, max(frame_rows, store.ROW_GROUP)):
            i = 0
            while i < pos.size:
                if full:
                    yield flush(cid, int(pos[i]))
                take = min(pos.size - i, frame_rows - npend)
                if align is not None and take < pos.size - i:  # the frame fills here: end it at a tile start
                    t = pos[i:i + take + 1] // align
                    take = int(np.searchsorted(t, t[-1])) or take  # 0: no tile starts here (flush carries)
                pend.append((cid, pos[i:i + take], codes[:, i:i + take]))
                npend += take
                i += take
                full = npend >= frame_rows or i < pos.size
    if pend:
        yield flush()


def predicted_ends(dataset: str, contigs: Sequence[str]) -> dict[str, int]:
    """Last predicted position + 1 of each contig, from the store's index (no data read)."""
    meta = store.read_metadata(dataset)
    ix = meta["index"]
    ends = np.zeros(len(meta["contigs"]), np.int64)
    np.maximum.at(ends, np.asarray(ix["contig"], np.int64), np.asarray(ix["last_pos"], np.int64) + 1)
    by_name = dict(zip(meta["contigs"], ends.tolist()))
    return {c: int(by_name.get(c, 0)) for c in contigs}


def check_sizes(dataset: str, contigs: Sequence[str], sizes: Mapping[str, int], source: str) -> None:
    """Every contig of the predictions must be in ``sizes`` (e.g. a ``.fai``) and no
    longer than it says (GenosegError naming contig, position and fix)."""
    fix = f"use the index of the FASTA the predictions were made from (not {source})"
    missing = [c for c in contigs if c not in sizes]
    if missing:
        raise GenosegError(f"contig(s) {', '.join(map(repr, missing[:5]))} of the predictions are not in "
                           f"{source}; {fix}")
    for contig, end in predicted_ends(dataset, contigs).items():
        if end > int(sizes[contig]):
            raise GenosegError(f"predictions on contig {contig!r} reach position {end:,} (1-based), beyond its "
                               f"length {int(sizes[contig]):,} in {source}; {fix}")
