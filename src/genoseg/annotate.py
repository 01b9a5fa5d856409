"""All steps of a genome run in one process: plan, predict, collect, call, tracks, genes,
report.

``annotate(fasta, outdir, model)`` writes ``OUTDIR/<backbone>/`` with ``predictions/``
(Parquet dataset), ``plan.json``, ``calls/``, ``tracks/``, ``genes/``, ``report.html`` and
``timings.json`` (seconds and bases/second per step). Intermediate files live in a
temporary ``OUTDIR/.genoseg-work-*`` directory that is removed at the end, success or
not; each output appears only when complete.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from typing import Optional

from .errors import GenosegError
from .outputs import atomic_path

log = logging.getLogger(__name__)


def demo_model_dir() -> str:
    """The bundled demo model: ``assets/demo_model`` of the repository (or of the
    installed package); GenosegError when it is missing."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.path.join(here, "assets", "demo_model"),
                  os.path.join(here, os.pardir, os.pardir, "assets", "demo_model")]
    for c in candidates:
        if os.path.isdir(os.path.join(c, "jax_model")):
            return os.path.normpath(c)
    raise GenosegError("the bundled demo model (assets/demo_model) is missing from this installation; "
                       "pass --model DIR (e.g. from `genoseg fetch-model`)")


@dataclasses.dataclass(frozen=True)
class AnnotateOptions:
    """Settings of one ``annotate`` run (validated on construction).

    Each field is the ``genoseg annotate`` option of the same name (``--window-length``
    is ``window_length``; ``contigs`` is the list ``--contigs a,b`` gives).
    ``downstream=False`` stops after the predictions (no calls, tracks, report).
    ``genes``: decode gene models into ``genes/`` (``None``: when the model predicts
    exons or introns); ``truth_genes``: reference gene models GFF3 to score them
    (``evaluation_genes.tsv``).
    """

    backbone: Optional[str] = None
    window_length: Optional[int] = None
    overlap: float = 0.5
    windows_per_chunk: int = 64
    batch_size: int = 8
    compute_dtype: str = "float32"
    reverse_complement: bool = False
    contigs: Optional[tuple[str, ...]] = None
    contig_regex: Optional[str] = None
    min_contig_length: int = 1
    truth: Optional[str] = None
    overwrite: bool = False
    downstream: bool = True
    genes: Optional[bool] = None
    truth_genes: Optional[str] = None
    command_line: Optional[str] = None  # shown in the report

    def __post_init__(self):
        if self.contigs is not None:
            object.__setattr__(self, "contigs", tuple(self.contigs))
        if self.window_length is not None and self.window_length <= 0:
            raise GenosegError(f"--window-length must be a positive number of bases, got {self.window_length}")
        if not 0.0 <= self.overlap < 1.0:
            raise GenosegError(f"--overlap must be in [0, 1), got {self.overlap}")
        for name in ("windows_per_chunk", "batch_size"):
            if getattr(self, name) < 1:
                raise GenosegError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.min_contig_length < 0:
            raise GenosegError(f"--min-contig-length must be >= 0, got {self.min_contig_length}")
        if self.compute_dtype not in ("float32", "bfloat16"):
            raise GenosegError(f"--compute-dtype must be float32 or bfloat16, got {self.compute_dtype!r}")
        if self.contigs is not None and (not self.contigs or not all(self.contigs)):
            raise GenosegError("--contigs: give one or more comma-separated contig names")
        if self.contig_regex is not None:
            try:
                re.compile(self.contig_regex)
            except re.error as exc:
                raise GenosegError(f"--contig-regex {self.contig_regex!r}: {exc}") from None


def annotate(fasta: str, outdir: str, model=None, options: Optional[AnnotateOptions] = None) -> dict:
    """Run every step; ``model`` is a directory, a loaded model object, or ``None``
    (the bundled demo model). With ``options.truth`` (a GFF3 of known elements, e.g.
    from ``genoseg simulate``) the calls are scored (``evaluation.tsv``, shown in the
    report). Returns the timings dict (also in ``timings.json``)."""
    o = options if options is not None else AnnotateOptions()
    from .fasta import Fasta
    from .outputs import backbone_dir, check_absent
    from .predict import predict_chunk
    from .store import dataset_dir, write_dataset
    from .windows import geometry_from_model, make_plan

    timings: dict = {"steps": [], "demo_model": model is None}
    if o.command_line:
        timings["command"] = o.command_line

    def step(name, t0, bases=None, **extra):
        dt = time.perf_counter() - t0
        rec = {"step": name, "seconds": round(dt, 3), **extra}
        if bases:
            rec["bases_per_second"] = round(bases / dt, 1) if dt > 0 else None
        timings["steps"].append(rec)
        log.info("annotate: %s done in %.1f s", name, dt)

    t0 = time.perf_counter()
    model_dir = None
    if model is None or isinstance(model, (str, os.PathLike)):
        from .models import load_model

        model_dir = os.fspath(model) if model is not None else demo_model_dir()
        model = load_model(model_dir, backbone=o.backbone, compute_dtype=o.compute_dtype)
    step("load_model", t0)
    bdir = backbone_dir(outdir, model.backbone)
    outputs = [dataset_dir(outdir, model.backbone), os.path.join(bdir, "plan.json")]
    if o.downstream:
        outputs += [os.path.join(bdir, x) for x in ("calls", "tracks", "report.html", "timings.json")]
        if o.truth is not None:
            outputs.append(os.path.join(bdir, "evaluation.tsv"))
            if not os.path.isfile(o.truth):
                raise GenosegError(f"--truth {o.truth}: file not found")
        if genes_on(o, model.features):
            outputs.append(os.path.join(bdir, "genes"))
            if o.truth_genes is not None:
                outputs.append(os.path.join(bdir, "evaluation_genes.tsv"))
                if not os.path.isfile(o.truth_genes):
                    raise GenosegError(f"--truth-genes {o.truth_genes}: file not found")
        elif o.truth_genes is not None:
            raise GenosegError("--truth-genes scores gene models, but gene decoding is off (--no-genes, or a model "
                               "without exon/intron features)")
    for path in outputs:
        check_absent(path, o.overwrite)
    os.makedirs(outdir, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".genoseg-work-", dir=outdir)
    try:
        t0 = time.perf_counter()
        g = geometry_from_model(model, o.window_length, o.overlap)
        plan, chunks = make_plan(fasta, g, os.path.join(work, "plan"), o.windows_per_chunk,
                                 list(o.contigs) if o.contigs else None, o.contig_regex,
                                 o.min_contig_length, True, model_dir)
        total_bases = sum(c["length"] for c in plan["contigs"])
        step("plan", t0, total_bases, windows=plan["n_windows"], chunks=plan["n_chunks"])

        t0 = time.perf_counter()
        files = []
        done_bases = 0
        progress = _Progress("predict")
        try:
            with Fasta(fasta, check_duplicates=False) as fa:
                for ch in chunks:
                    f = os.path.join(work, f"chunk_{ch['chunk']:05d}.parquet")
                    st = predict_chunk(model, fa, ch, f, batch_size=o.batch_size,
                                       reverse_complement=o.reverse_complement, overwrite=True)
                    files.append(f)
                    done_bases += st["owned_bases"]
                    progress(len(files), len(chunks), done_bases, time.perf_counter() - t0)
        finally:
            progress.close()
        step("predict", t0, total_bases)

        t0 = time.perf_counter()
        ds = dataset_dir(outdir, model.backbone)
        write_dataset(ds, plan, files, overwrite=o.overwrite)
        with open(os.path.join(work, "plan.json"), "w") as fh:
            json.dump(plan, fh, indent=1)
        if os.path.exists(os.path.join(bdir, "plan.json")):
            os.remove(os.path.join(bdir, "plan.json"))
        os.replace(os.path.join(work, "plan.json"), os.path.join(bdir, "plan.json"))
        step("collect", t0, total_bases)

        if o.downstream:
            _downstream(bdir, ds, plan, timings, step, o, fasta, genes_on(o, model.features))
        timings["total_seconds"] = round(sum(s["seconds"] for s in timings["steps"]), 3)
        if o.downstream:
            with open(os.path.join(bdir, "timings.json"), "w") as fh:
                json.dump(timings, fh, indent=1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return timings


class _Progress:
    """A progress bar on an interactive stderr; otherwise one log line per ~5 % / chunk."""

    def __init__(self, what: str, width: int = 30):
        self.what, self.width = what, width
        self.tty = sys.stderr.isatty() and log.isEnabledFor(logging.INFO)
        self._last_pct = -100.0
        # per-chunk log lines would break the bar; they are for `genoseg predict` runs
        self._chunk_log = logging.getLogger("genoseg.predict")
        self._chunk_level = self._chunk_log.level
        if self.tty:
            self._chunk_log.setLevel(logging.WARNING)

    def __call__(self, done: int, total: int, bases: int, seconds: float) -> None:
        pct = 100.0 * done / max(total, 1)
        rate = bases / seconds if seconds > 0 else 0.0
        left = seconds * (total - done) / done if done else 0.0
        text = f"{done}/{total} chunks, {bases:,} bases, {rate:,.0f} bases/s, ~{left:.0f} s left"
        if self.tty:
            fill = int(self.width * done / max(total, 1))
            sys.stderr.write(f"\r{self.what} [{'#' * fill}{'-' * (self.width - fill)}] {text}   ")
            if done == total:
                sys.stderr.write("\n")
            sys.stderr.flush()
        elif pct - self._last_pct >= 5 or done == total:
            self._last_pct = pct
            log.info("annotate: %s %s", self.what, text)

    def close(self) -> None:
        self._chunk_log.setLevel(self._chunk_level)


def genes_on(o: AnnotateOptions, features) -> bool:
    """Whether ``annotate`` decodes gene models: ``o.genes``, or by default when the
    model predicts exons or introns."""
    return bool(o.genes) if o.genes is not None else bool({"exon", "intron"} & set(features))


def _downstream(bdir, ds, plan, timings, step, o: AnnotateOptions, fasta: str, genes: bool) -> None:
    """call, tracks, (genes,) (evaluate,) report into ``bdir``."""
    from . import calls, report, tracks
    from .evaluate import evaluate_calls, format_table

    sizes = {c["name"]: c["length"] for c in plan["contigs"]}
    t0 = time.perf_counter()
    calls.call_dataset(ds, os.path.join(bdir, "calls"), overwrite=o.overwrite, chrom_sizes=sizes)
    step("call", t0)
    t0 = time.perf_counter()
    tracks.write_tracks(ds, os.path.join(bdir, "tracks"), sizes, overwrite=o.overwrite)
    step("tracks", t0)
    gene_eval = _genes(bdir, ds, fasta, o, step) if genes else None
    evaluation = None
    if o.truth is not None:
        t0 = time.perf_counter()
        evaluation = evaluate_calls(o.truth, os.path.join(bdir, "calls"))
        with atomic_path(os.path.join(bdir, "evaluation.tsv"), overwrite=o.overwrite) as tmp:
            evaluation.to_csv(tmp, sep="\t", index=False)
        log.info("annotate: evaluation against %s\n%s", o.truth, format_table(evaluation))
        step("evaluate", t0)
    t0 = time.perf_counter()
    report.write_report(bdir, os.path.join(bdir, "report.html"), plan=plan, evaluation=evaluation,
                        timings=timings, overwrite=o.overwrite, gene_evaluation=gene_eval,
                        truth_genes=o.truth_genes if genes else None)
    step("report", t0)


def _genes(bdir, ds, fasta, o: AnnotateOptions, step):
    """Gene models into ``bdir/genes`` (and their score against ``o.truth_genes``)."""
    from .commands.genes import default_threads
    from .evaluate import evaluate_gene_models, format_gene_table
    from .genes import predict_genes

    t0 = time.perf_counter()
    threads = getattr(o, "threads", None) or default_threads()
    s = predict_genes(ds, fasta, os.path.join(bdir, "genes"), threads=threads, overwrite=o.overwrite)
    step("genes", t0, s["bases"], genes=s["genes"])
    if o.truth_genes is None:
        return None
    t0 = time.perf_counter()
    table = evaluate_gene_models(o.truth_genes, os.path.join(bdir, "genes", "genes.gff3"))
    with atomic_path(os.path.join(bdir, "evaluation_genes.tsv"), overwrite=o.overwrite) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    log.info("annotate: gene models against %s\n%s", o.truth_genes, format_gene_table(table))
    step("evaluate_genes", t0)
    return table
