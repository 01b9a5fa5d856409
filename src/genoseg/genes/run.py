"""``predict_genes``: a prediction dataset + its genome -> gene models on disk.

Streams contig by contig (predictions through :mod:`genoseg.store`, sequence through
the indexed FASTA), finds gene-bearing regions (:mod:`.regions`), decodes them
(:mod:`.decoder`, in ``threads`` worker threads: the compiled kernel releases the GIL)
and writes, in genome order whatever the thread count, into ``outdir``:

- ``genes.gff3``: ``gene -> mRNA | lnc_RNA -> exon / CDS / five_prime_UTR /
  three_prime_UTR`` (Sequence Ontology types, 1-based closed, scores per gene,
  transcript and exon);
- ``proteins.faa``: CDS translations (no stop codon), one record per coding transcript;
- ``transcripts.bed``: BED12 of the transcripts (thick part = CDS);
- ``summary.json``: parameters, counts per contig and in all, bases decoded (nothing
  that depends on where or how fast it ran: reruns give the same file).

The directory appears only when complete (written beside it, then renamed).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Optional, Sequence

import numpy as np

from .. import store
from ..errors import GenosegError
from ..outputs import atomic_path
from . import statemodel, viterbi, writers
from .decoder import Decoder, DecoderParams
from .regions import RegionFinder

log = logging.getLogger(__name__)

OUTPUTS = ("genes.gff3", "proteins.faa", "transcripts.bed", "summary.json")
#: Features the decoder reads (emissions, splice sites).
USED_FEATURES = (*statemodel.EMISSION_FEATURES, "splice_donor", "splice_acceptor")


def select_contigs(available: Sequence[str], names: Optional[Sequence[str]] = None,
                   regex: Optional[str] = None, what: str = "predictions") -> list[str]:
    """Contigs to decode: ``names`` (each must have predictions), or those matching
    ``regex``, or all (dataset order)."""
    if names:
        missing = [n for n in names if n not in set(available)]
        if missing:
            raise GenosegError(f"--contigs: no {what} for {', '.join(map(repr, missing))}")
        return [c for c in available if c in set(names)]
    if regex:
        try:
            rx = re.compile(regex)
        except re.error as exc:
            raise GenosegError(f"--contig-regex {regex!r}: {exc}") from None
        chosen = [c for c in available if rx.search(c)]
        if not chosen:
            raise GenosegError(f"--contig-regex {regex!r} matches none of the {len(available)} contigs with {what}")
        return chosen
    return list(available)


class _Sink:
    """Writes decoded transcripts in submission order, numbering genes as it goes."""

    def __init__(self, tmp: str, source: str):
        self.body = open(os.path.join(tmp, ".genes.body"), "w")
        self.faa = open(os.path.join(tmp, "proteins.faa"), "w")
        self.bed = open(os.path.join(tmp, "transcripts.bed"), "w")
        self.source = source
        self.n = 0
        self.coding = 0

    def write(self, transcripts, stats: dict) -> None:
        for tx in transcripts:
            self.n += 1
            gid = writers.gene_id(self.n)
            self.body.write(writers.gff3_gene(tx, gid, self.source))
            self.bed.write(writers.bed12(tx, gid))
            if tx.coding:
                self.coding += 1
                self.faa.write(writers.fasta_protein(tx, gid))
                stats["coding"] += 1
            else:
                stats["lncRNA"] += 1

    def close(self) -> None:
        for fh in (self.body, self.faa, self.bed):
            fh.close()


def predict_genes(dataset_dir: str, fasta: str, outdir: str, params: Optional[DecoderParams] = None, *,
                  contigs: Optional[Sequence[str]] = None, contig_regex: Optional[str] = None,
                  threads: int = 1, overwrite: bool = False, batch_rows: int = 1_000_000) -> dict:
    """Decode gene models from ``dataset_dir`` (``OUTDIR/<backbone>/predictions``) and the
    genome ``fasta`` into ``outdir`` (see the module docstring). Returns the summary
    (plus ``seconds`` and ``bases_per_second``).

    Everything a user can get wrong (missing dataset, model without exon/intron
    probabilities, contigs missing from the FASTA, existing ``outdir``) is reported
    before any decoding.
    """
    from ..calls import open_dataset
    from ..fasta import Fasta

    t0 = time.perf_counter()
    from ..parallel import check_threads

    threads = check_threads(threads)
    meta = open_dataset(dataset_dir)
    if not {"exon", "intron"} & set(meta["features"]):
        raise GenosegError(f"{dataset_dir}: gene models need exon and/or intron probabilities; the model predicts "
                           f"{', '.join(meta['features'])}")
    used = [f for f in meta["features"] if f in USED_FEATURES]  # only these columns are read
    decoder = Decoder(used, params)
    chosen = select_contigs(store.list_contigs(dataset_dir), contigs, contig_regex)
    fa = Fasta(fasta, check_duplicates=False)
    lengths = {c.name: c.length for c in fa.contigs}
    absent = [c for c in chosen if c not in lengths]
    if absent:
        fa.close()
        raise GenosegError(f"{fasta}: no sequence for contig(s) {', '.join(map(repr, absent[:5]))} of the "
                           f"predictions; pass the FASTA the predictions were made from")
    viterbi.kernel(decoder.edges, decoder.cls)  # compiled (or numba missing: clear error) before any reading
    backbone = meta.get("backbone") or "model"
    summary = {"backbone": backbone, "params": dataclasses.asdict(decoder.params), "lncrna_states": decoder.lncrna,
               "contigs": {}}
    with atomic_path(outdir, overwrite=overwrite, is_dir=True) as tmp, fa:
        sink = _Sink(tmp, f"genoseg:{backbone}")
        pool = ThreadPoolExecutor(threads) if threads > 1 else None
        try:
            for contig in chosen:
                summary["contigs"][contig] = _decode_contig(dataset_dir, contig, lengths[contig], fa, decoder,
                                                            sink, pool, threads, batch_rows)
        finally:
            sink.close()
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        _finish_gff3(tmp, [(c, lengths[c]) for c in chosen])
        per = summary["contigs"].values()
        for key in ("bases", "regions", "region_bases", "coding", "lncRNA", "forced_cuts"):
            summary[key] = int(sum(v[key] for v in per))
        summary["genes"] = sink.n
        with open(os.path.join(tmp, "summary.json"), "w") as fh:
            json.dump(summary, fh, indent=1)
        summary["seconds"] = round(time.perf_counter() - t0, 3)
        summary["bases_per_second"] = round(summary["bases"] / max(summary["seconds"], 1e-9), 1)
    log.info("genes: %d genes (%d coding, %d lncRNA) on %d contigs; %d regions, %d of %d bases decoded, "
             "%.1f s (%.0f bases/s)", summary["genes"], summary["coding"], summary["lncRNA"], len(chosen),
             summary["regions"], summary["region_bases"], summary["bases"], summary["seconds"],
             summary["bases_per_second"])
    return summary


def _decode_contig(dataset_dir, contig, length, fa, decoder, sink, pool, threads, batch_rows) -> dict:
    p = decoder.params
    finder = RegionFinder(decoder.gene_cols, p.region_threshold, p.region_margin, p.max_region)
    stats = collections.Counter(bases=0, regions=0, region_bases=0, coding=0, lncRNA=0)
    pending: collections.deque = collections.deque()

    def submit(start: int, codes: np.ndarray) -> None:
        end = start + len(codes)
        if end > length:
            raise GenosegError(f"predictions reach {contig}:{end} but the FASTA's {contig!r} has {length} bases; "
                               "pass the FASTA the predictions were made from")
        seq = viterbi.encode(fa.fetch_bytes(contig, start, end))
        stats["regions"] += 1
        stats["region_bases"] += len(codes)
        if pool is None:
            sink.write(decoder.decode(contig, start, seq, codes), stats)
            return
        pending.append(pool.submit(decoder.decode, contig, start, seq, codes))
        while len(pending) > 2 * threads or (pending and pending[0].done()):
            sink.write(pending.popleft().result(), stats)

    for pos, codes in store.iter_codes(dataset_dir, contig, decoder.features, batch_rows=batch_rows):
        stats["bases"] += len(pos)
        for start, block in finder.feed(pos, codes):
            submit(start, block)
    for start, block in finder.finish():
        submit(start, block)
    while pending:
        sink.write(pending.popleft().result(), stats)
    stats["forced_cuts"] = finder.forced_cuts
    return dict(stats)


def _finish_gff3(tmp: str, regions) -> None:
    body = os.path.join(tmp, ".genes.body")
    with open(os.path.join(tmp, "genes.gff3"), "w") as out, open(body) as fh:
        out.write(writers.gff3_header(regions))
        shutil.copyfileobj(fh, out, 1 << 22)
    os.remove(body)
