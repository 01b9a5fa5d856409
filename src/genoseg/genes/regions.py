"""Gene-bearing regions of one contig, found while its predictions stream by.

A base is *gene-like* when its gene-ness code (max over the given columns, ``uint8``
p*255) reaches the threshold. A region is a maximal run of bases that have a gene-like
base within ``margin`` bp, inside one block of consecutive predicted positions (a base
without a prediction ends a region): gene-like stretches widened by the margin and merged
where the margins touch. Regions are handed out as soon as no later base can change them,
so memory holds one region (at most ``max_region`` bases) plus one batch; a region that
would grow past ``max_region`` is cut at its least gene-like base in its second half.
"""

from __future__ import annotations

import logging
from typing import Iterator, Sequence

import numpy as np

log = logging.getLogger(__name__)


class RegionFinder:
    """Feed ``(pos, codes)`` batches of one contig in increasing ``pos``; collect
    ``(start, codes)`` regions (``codes``: the rows of ``[start, start + len(codes))``)."""

    def __init__(self, gene_cols: Sequence[int], threshold: float, margin: int, max_region: int):
        self.cols = list(gene_cols)
        self.thr = int(np.ceil(threshold * 255 - 1e-6))
        self.margin = int(margin)
        self.max_region = int(max_region)
        self.pos = np.zeros(0, np.int64)
        self.codes: np.ndarray | None = None
        self.forced_cuts = 0

    def feed(self, pos: np.ndarray, codes: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        if not len(pos):
            return
        if self.codes is None:
            self.pos, self.codes = np.asarray(pos, np.int64), np.asarray(codes, np.uint8)
        else:
            self.pos = np.concatenate([self.pos, pos])
            self.codes = np.concatenate([self.codes, codes])
        yield from self._regions(final=False)

    def finish(self) -> Iterator[tuple[int, np.ndarray]]:
        if self.codes is not None and len(self.pos):
            yield from self._regions(final=True)
        self.pos, self.codes = np.zeros(0, np.int64), None

    def _regions(self, final: bool) -> Iterator[tuple[int, np.ndarray]]:
        pos, codes, m = self.pos, self.codes, self.margin
        n = len(pos)
        geneness = codes[:, self.cols].max(axis=1)
        gene = geneness >= self.thr
        brk = np.ones(n, bool)
        brk[1:] = np.diff(pos) != 1  # a new block of consecutive positions starts here
        block_start = np.maximum.accumulate(np.where(brk, np.arange(n), 0))
        block_end = np.minimum.accumulate(np.where(np.append(brk[1:], True), np.arange(1, n + 1), n)[::-1])[::-1]
        c = np.concatenate([[0], np.cumsum(gene)])
        k = np.arange(n)
        near = c[np.minimum(k + m + 1, block_end)] - c[np.maximum(k - m, block_start)] > 0
        starts = np.flatnonzero(near & (brk | ~np.roll(near, 1)))
        ends = np.flatnonzero(near & (np.append(brk[1:], True) | ~np.append(near[1:], False))) + 1
        keep = max(0, n - m)  # rows a later gene-like base could still reach
        for a, e in zip(starts.tolist(), ends.tolist()):
            while e - a > self.max_region:  # too long: cut at its least gene-like base
                lo = a + self.max_region // 2
                cut = lo + int(np.argmin(geneness[lo:a + self.max_region]))
                self.forced_cuts += 1
                log.warning("gene region at %d grew past %d bp: cut at %d", int(pos[a]), self.max_region, int(pos[cut]))
                yield int(pos[a]), codes[a:cut]
                a = cut
            if final or e + m < n or block_end[a] < n:
                yield int(pos[a]), codes[a:e]
                continue
            keep = a  # still growing: wait for more rows
            break
        self.pos, self.codes = pos[keep:].copy(), codes[keep:].copy()
