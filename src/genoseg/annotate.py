"""All steps of a genome run in one process: plan, predict, collect, call, tracks, genes,
report.

``annotate(fasta, outdir, model, options)`` writes ``OUTDIR/<backbone>/`` with
``predictions/`` (Parquet dataset), ``plan.json``, ``calls/``, ``tracks/``, ``genes/``,
``report.html``, ``timings.json`` (and ``evaluation.tsv`` / ``evaluation_genes.tsv`` with
truth files).

Order of work (so that bad input costs nothing):

1. every input is checked before the first window is computed: the options, the output
   directory (a directory, writable), existing outputs (refused unless ``overwrite``),
   the truth GFF3 (parsed in full), the model (loaded), the FASTA and its index, the
   contig selection (the plan validates every base);
2. chunks are predicted into the work directory ``OUTDIR/.genoseg-work-<backbone>/``
   (one per output directory and backbone, locked while a run uses it). Each chunk file
   appears only when complete; a rerun of the same command after a kill reuses the chunk
   files that belong to its plan and settings (:func:`genoseg.store.chunk_file_ok`) and computes the
   rest, so the result is the same, bit for bit, as an uninterrupted run;
3. every output is written into ``WORK/stage/`` and moved into ``OUTDIR/<backbone>/``
   only when all are complete; with ``overwrite`` the previous run's outputs are
   removed at that moment (never a mix of old and new files). On success the work
   directory is removed.

SIGINT/SIGTERM (see :mod:`genoseg.signals`) stop the run within one batch and leave only
the finished chunk files; a failure that is the input's fault leaves nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import os
import re
import shutil
import sys
import time
from typing import Optional

from . import signals
from .errors import GenosegError
from .outputs import atomic_path, backbone_dir, check_absent, check_writable_dir, escape_name
from .parallel import check_threads
from .windows import ChunkSizing, check_overlap

log = logging.getLogger(__name__)

#: Everything ``annotate`` writes under ``OUTDIR/<backbone>/``: a run replaces (with
#: ``overwrite``) or refuses (without) all of them, so old and new never mix.
OUTPUT_NAMES = ("predictions", "plan.json", "calls", "tracks", "genes", "evaluation.tsv", "evaluation_genes.tsv",
                "report.html", "timings.json")
RUN_FILE = "run.json"  # the settings the work directory's chunk files were made with


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
    ``resume=False`` (``--no-resume``) discards chunk files of an interrupted run
    (``overwrite`` does too). ``downstream=False`` stops after the predictions (no
    calls, tracks, report). ``genes``: decode gene models into ``genes/`` (``None``: when
    the model predicts exons or introns); ``truth_genes``: reference gene models GFF3 to
    score them (``evaluation_genes.tsv``); ``command_line``: shown in the report.
    """

    backbone: Optional[str] = None
    window_length: Optional[int] = None
    overlap: float = 0.5
    windows_per_chunk: Optional[int] = None  # default 64 unless chunk_seconds / target_chunks
    chunk_seconds: Optional[float] = None
    target_chunks: Optional[int] = None
    seconds_per_window: Optional[float] = None
    batch_size: int = 8
    compute_dtype: str = "float32"
    reverse_complement: bool = False
    contigs: Optional[tuple[str, ...]] = None
    contig_regex: Optional[str] = None
    min_contig_length: int = 1
    fai: Optional[str] = None
    gzi: Optional[str] = None
    truth: Optional[str] = None
    overwrite: bool = False
    resume: bool = True
    downstream: bool = True
    threads: Optional[int] = None  # worker processes for call and tracks; None: the task's cores
    genes: Optional[bool] = None
    truth_genes: Optional[str] = None
    command_line: Optional[str] = None

    def __post_init__(self):
        if self.threads is not None:
            check_threads(self.threads)
        if self.contigs is not None:
            object.__setattr__(self, "contigs", tuple(self.contigs))
        if self.window_length is not None and self.window_length <= 0:
            raise GenosegError(f"--window-length must be a positive number of bases, got {self.window_length}")
        check_overlap(self.overlap)
        self.sizing  # noqa: B018 - validates the chunk size options
        if self.batch_size < 1:
            raise GenosegError(f"--batch-size must be at least 1, got {self.batch_size}")
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
        for name in ("fai", "gzi", "truth", "truth_genes"):
            path = getattr(self, name)
            if path is not None and not os.path.isfile(path):
                raise GenosegError(f"--{name.replace('_', '-')} {path}: file not found")

    @property
    def sizing(self) -> ChunkSizing:
        """How windows are grouped into chunks (default: 64 windows per chunk)."""
        return ChunkSizing.from_options(self.windows_per_chunk, self.chunk_seconds, self.target_chunks,
                                        self.seconds_per_window, default="windows_per_chunk")


def annotate(fasta: str, outdir: str, model=None, options: Optional[AnnotateOptions] = None) -> dict:
    """Run every step; ``model`` is a directory, a loaded model object, or ``None``
    (the bundled demo model). With ``options.truth`` (a GFF3 of known elements, e.g.
    from ``genoseg simulate``) the calls are scored (``evaluation.tsv``, shown in the
    report). Returns the timings dict (also in ``timings.json``)."""
    o = options if options is not None else AnnotateOptions()
    outdir = os.fspath(outdir)
    _import_steps()
    timings = _Timings(demo_model=model is None, command=o.command_line)
    check_writable_dir(outdir, "--outdir")
    truth = _read_truth(o.truth) if o.truth is not None and o.downstream else None
    if o.truth_genes is not None and o.downstream:
        _read_truth_genes(o.truth_genes)
    model_dir, backbone = _model_source(model, o.backbone)
    bdir = backbone_dir(outdir, backbone)
    for name in OUTPUT_NAMES:
        check_absent(os.path.join(bdir, name), o.overwrite)
    signals.check()

    work = WorkDir(outdir, backbone)
    with work.session(fresh=o.overwrite or not o.resume):
        if model is None or isinstance(model, (str, os.PathLike)):
            from .models import load_model

            t0 = time.perf_counter()  # (JAX start-up and compiles: a signal waits, see genoseg.signals)
            model = load_model(model_dir, backbone=o.backbone, compute_dtype=o.compute_dtype)
            timings.add("load_model", t0)
            signals.check()
        genes = o.downstream and genes_on(o, model.features)
        with signals.immediate():
            plan, chunks = _plan(fasta, model, model_dir, work, o, timings)
            if truth is not None:
                _check_truth_contigs(o.truth, truth, plan)
        work.claim(_run_key(plan, model, model_dir, o))
        files = _predict(fasta, model, plan, chunks, work, o, timings)  # stops between batches
        stage = work.stage_dir(backbone)
        with signals.immediate():
            _collect(plan, files, stage, timings)
            if o.downstream:
                _downstream(stage, bdir, plan, timings, o, fasta, genes)
        # (a signal now waits: all outputs move into place, or none; then the run is done)
        publish(stage, bdir, os.path.join(work.path, "old"))
        work.done()
    return timings.as_dict()


def _import_steps() -> None:
    """Import what every step uses now, while a signal is only recorded: an exception
    raised inside a C extension's initialisation can crash the interpreter, and later
    steps raise signals at once (:func:`genoseg.signals.immediate`)."""
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import pyBigWig  # noqa: F401
    import pysam  # noqa: F401

    from . import calls, evaluate, fasta, genes, models, predict, report, report_genes, store, tracks, windows  # noqa: F401


class _Timings:
    """Seconds (and bases per second) per step, as written to ``timings.json`` (with
    whether the demo model ran and the command line, for the report)."""

    def __init__(self, demo_model: bool = False, command: Optional[str] = None):
        self.steps: list[dict] = []
        self.extra = {"demo_model": bool(demo_model), **({"command": command} if command else {})}

    def add(self, name: str, t0: float, bases: Optional[int] = None, **extra) -> None:
        dt = time.perf_counter() - t0
        rec = {"step": name, "seconds": round(dt, 3), **extra}
        if bases:
            rec["bases_per_second"] = round(bases / dt, 1) if dt > 0 else None
        self.steps.append(rec)
        log.info("annotate: %s done in %.1f s", name, dt)

    def as_dict(self) -> dict:
        return {"steps": list(self.steps), "total_seconds": round(sum(s["seconds"] for s in self.steps), 3),
                **self.extra}


# ------------------------------------------------------------------- checks up front
def _read_truth(path: str):
    """The truth GFF3, parsed in full now (a malformed line must not cost the run)."""
    from .evaluate import read_gff3

    truth = read_gff3(path)
    if truth.empty:
        raise GenosegError(f"--truth {path}: no features in this GFF3 (nothing to score against)")
    return truth


def _read_truth_genes(path: str) -> None:
    """The reference gene models, parsed in full now (gene-level scoring needs exons)."""
    from .evaluate import read_gene_models

    if not len(read_gene_models(path)):
        raise GenosegError(f"--truth-genes {path}: no gene models (exon features with a Parent transcript) in this "
                           "GFF3; give gene -> mRNA -> exon models (e.g. truth_genes.gff3 of genoseg simulate)")


def genes_on(o: AnnotateOptions, features) -> bool:
    """Whether ``annotate`` decodes gene models: ``o.genes``, or by default when the
    model predicts exons or introns (``--truth-genes`` without them is refused)."""
    on = bool(o.genes) if o.genes is not None else bool({"exon", "intron"} & set(features))
    if not on and o.truth_genes is not None:
        raise GenosegError("--truth-genes scores gene models, but gene decoding is off (--no-genes, or a model "
                           "without exon/intron features)")
    return on


def _check_truth_contigs(path: str, truth, plan: dict) -> None:
    planned = {c["name"] for c in plan["contigs"]}
    names = list(dict.fromkeys(truth["chrom"]))
    if not planned.intersection(names):
        raise GenosegError(
            f"--truth {path}: none of its contigs ({', '.join(map(repr, names[:3]))}"
            f"{', ...' if len(names) > 3 else ''}) is among the contigs annotated "
            f"({', '.join(map(repr, sorted(planned)[:3]))}{', ...' if len(planned) > 3 else ''}); "
            "contig names must match the FASTA's (e.g. 'chr1' vs '1')")


def _model_source(model, backbone: Optional[str]) -> tuple[Optional[str], str]:
    """``(model directory or None, backbone)`` without loading any weights."""
    if model is not None and not isinstance(model, (str, os.PathLike)):
        return None, model.backbone
    from .models import detect_backbone

    model_dir = os.fspath(model) if model is not None else demo_model_dir()
    return model_dir, backbone or detect_backbone(model_dir)


# ------------------------------------------------------------------------ the steps
def _plan(fasta: str, model, model_dir, work: "WorkDir", o: AnnotateOptions, timings: _Timings):
    from .fasta import Fasta
    from .windows import geometry_from_model, make_plan

    t0 = time.perf_counter()
    g = geometry_from_model(model, o.window_length, o.overlap)
    with Fasta(fasta, fai=o.fai, gzi=o.gzi, index_dir=work.path) as fa:
        plan, chunks = make_plan(fa, g, None, o.sizing, list(o.contigs) if o.contigs else None,
                                 o.contig_regex, o.min_contig_length, True, model_dir)
    total = sum(c["length"] for c in plan["contigs"])
    timings.add("plan", t0, total, windows=plan["n_windows"], chunks=plan["n_chunks"])
    return plan, chunks


def _predict(fasta: str, model, plan: dict, chunks: list, work: "WorkDir", o: AnnotateOptions,
             timings: _Timings) -> list[str]:
    """Every chunk's Parquet file in the work directory; complete files of this plan
    left by an interrupted run are reused, not recomputed."""
    from .fasta import Fasta
    from .predict import predict_chunk

    t0 = time.perf_counter()
    files = [work.chunk_file(ch["chunk"]) for ch in chunks]
    reuse = work.reusable_chunks(plan["plan_id"], chunks)
    if reuse:
        log.info("annotate: resuming: %d of %d chunks were finished by an earlier run and are reused",
                 len(reuse), len(chunks))
    done_bases = 0
    progress = _Progress("predict")
    try:
        with Fasta(fasta, check_duplicates=False, fai=o.fai, gzi=o.gzi, index_dir=work.path) as fa:
            for i, (ch, f) in enumerate(zip(chunks, files)):
                if ch["chunk"] not in reuse:
                    predict_chunk(model, fa, ch, f, batch_size=o.batch_size,
                                  reverse_complement=o.reverse_complement, overwrite=True)
                done_bases += sum(p["owned"][1] - p["owned"][0] for p in ch["parts"])
                progress(i + 1, len(chunks), done_bases, time.perf_counter() - t0)
                signals.check()
    finally:
        progress.close()
    total = sum(c["length"] for c in plan["contigs"])
    timings.add("predict", t0, total, chunks_computed=len(chunks) - len(reuse), chunks_reused=len(reuse))
    return files


def _collect(plan: dict, files: list[str], stage: str, timings: _Timings) -> None:
    from .store import write_dataset

    t0 = time.perf_counter()
    write_dataset(os.path.join(stage, "predictions"), plan, files, overwrite=True)
    with atomic_path(os.path.join(stage, "plan.json"), overwrite=True) as tmp, open(tmp, "w") as fh:
        json.dump(plan, fh, indent=1)
    timings.add("collect", t0, sum(c["length"] for c in plan["contigs"]))


def _downstream(stage: str, bdir: str, plan: dict, timings: _Timings, o: AnnotateOptions, fasta: str,
                genes: bool) -> None:
    """call, tracks, (genes,) (evaluate,) report and timings.json into ``stage`` (the
    report names ``bdir``, where the outputs will be)."""
    from . import calls, report, tracks
    from .evaluate import evaluate_calls, format_table

    sizes = {c["name"]: c["length"] for c in plan["contigs"]}
    t0 = time.perf_counter()
    calls.call_dataset(os.path.join(stage, "predictions"), os.path.join(stage, "calls"), overwrite=True,
                       chrom_sizes=sizes, threads=o.threads)
    _name_final_dataset(os.path.join(stage, "calls", "summary.json"), os.path.join(bdir, "predictions"))
    timings.add("call", t0)
    t0 = time.perf_counter()
    tracks.write_tracks(os.path.join(stage, "predictions"), os.path.join(stage, "tracks"), sizes, overwrite=True,
                        threads=o.threads)
    timings.add("tracks", t0)
    gene_evaluation = _genes(stage, fasta, o, timings) if genes else None
    evaluation = None
    if o.truth is not None:
        t0 = time.perf_counter()
        evaluation = evaluate_calls(o.truth, os.path.join(stage, "calls"))
        with atomic_path(os.path.join(stage, "evaluation.tsv"), overwrite=True) as tmp:
            evaluation.to_csv(tmp, sep="\t", index=False)
        log.info("annotate: evaluation against %s\n%s", o.truth, format_table(evaluation))
        timings.add("evaluate", t0)
    t0 = time.perf_counter()
    report.write_report(stage, os.path.join(stage, "report.html"), plan=plan, evaluation=evaluation,
                        timings=timings.as_dict(), overwrite=True, location=bdir, gene_evaluation=gene_evaluation,
                        truth_genes=o.truth_genes if genes else None)
    timings.add("report", t0)
    with atomic_path(os.path.join(stage, "timings.json"), overwrite=True) as tmp, open(tmp, "w") as fh:
        json.dump(timings.as_dict(), fh, indent=1)


def _genes(stage: str, fasta: str, o: AnnotateOptions, timings: _Timings):
    """Gene models into ``stage/genes`` (and their score against ``o.truth_genes``)."""
    from .evaluate import evaluate_gene_models, format_gene_table
    from .genes import predict_genes

    t0 = time.perf_counter()
    s = predict_genes(os.path.join(stage, "predictions"), fasta, os.path.join(stage, "genes"),
                      threads=check_threads(o.threads),
                      overwrite=True)
    timings.add("genes", t0, s["bases"], genes=s["genes"])
    if o.truth_genes is None:
        return None
    t0 = time.perf_counter()
    table = evaluate_gene_models(o.truth_genes, os.path.join(stage, "genes", "genes.gff3"))
    with atomic_path(os.path.join(stage, "evaluation_genes.tsv"), overwrite=True) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    log.info("annotate: gene models against %s\n%s", o.truth_genes, format_gene_table(table))
    timings.add("evaluate_genes", t0)
    return table


def _name_final_dataset(summary: str, dataset: str) -> None:
    """The calls summary names the dataset it was made from: the final one, not the stage."""
    if os.path.isfile(summary):
        with open(summary) as fh:
            d = json.load(fh)
        d["dataset"] = os.path.abspath(dataset)
        with atomic_path(summary, overwrite=True) as tmp, open(tmp, "w") as fh:
            json.dump(d, fh, indent=1)


def publish(stage: str, bdir: str, old: str) -> None:
    """Move every output from ``stage`` into ``bdir``; previous outputs of the same names
    (:data:`OUTPUT_NAMES`) go first, via ``old`` (removed after), so ``bdir`` never holds
    a mix of two runs."""
    os.makedirs(bdir, exist_ok=True)
    os.makedirs(old, exist_ok=True)
    for name in OUTPUT_NAMES:
        if os.path.lexists(os.path.join(bdir, name)):
            os.replace(os.path.join(bdir, name), os.path.join(old, name))
    for name in sorted(os.listdir(stage)):
        os.replace(os.path.join(stage, name), os.path.join(bdir, name))
    shutil.rmtree(old)


# --------------------------------------------------------------------- work directory
def _run_key(plan: dict, model, model_dir: Optional[str], o: AnnotateOptions) -> dict:
    """What the chunk files depend on besides the plan: a rerun with other settings or
    another model must not reuse them."""
    if model_dir is not None:
        jax_dir = os.path.join(model_dir, "jax_model")
        files = sorted(os.listdir(jax_dir)) if os.path.isdir(jax_dir) else []
        ident = {"model": os.path.realpath(model_dir),
                 "files": [[f, os.stat(os.path.join(jax_dir, f)).st_size,
                            os.stat(os.path.join(jax_dir, f)).st_mtime_ns] for f in files]}
    else:
        ident = {"model": f"{type(model).__module__}.{type(model).__qualname__}"}
    return {"plan_id": plan["plan_id"], **ident, "features": list(model.features),
            "batch_size": o.batch_size, "compute_dtype": o.compute_dtype,
            "reverse_complement": o.reverse_complement}


class WorkDir:
    """``OUTDIR/.genoseg-work-<backbone>/``: one per output directory and backbone, so a
    rerun finds it. Holds ``chunks/`` (finished chunk files, reusable), ``run.json``
    (what they were made with), ``stage/`` (outputs before they move into place) and,
    when the FASTA's directory is read-only, the FASTA index. A lock file keeps two runs
    from sharing it."""

    def __init__(self, outdir: str, backbone: str):
        self.outdir = outdir
        self.path = os.path.join(outdir, f".genoseg-work-{escape_name(backbone)}")
        self.chunks = os.path.join(self.path, "chunks")
        self._lock_fd: Optional[int] = None
        self._made_outdir = False

    def chunk_file(self, i: int) -> str:
        return os.path.join(self.chunks, f"chunk_{i:05d}.parquet")

    def stage_dir(self, backbone: str) -> str:
        return os.path.join(self.path, "stage", escape_name(backbone))

    @contextlib.contextmanager
    def session(self, fresh: bool):
        """Lock the work directory for this run; start clean when ``fresh``. On an
        error, keep it only if it holds finished chunks (a rerun resumes from them)."""
        self._made_outdir = not os.path.exists(self.outdir)
        os.makedirs(self.path, exist_ok=True)
        self._lock()
        try:
            if fresh and os.path.isdir(self.chunks):
                log.info("annotate: discarding the chunks of an earlier run in %s", self.path)
                shutil.rmtree(self.chunks)
            for name in ("stage", "old"):  # left by a killed run: rebuilt from the chunks
                shutil.rmtree(os.path.join(self.path, name), ignore_errors=True)
            os.makedirs(self.chunks, exist_ok=True)
            yield self
        except BaseException as exc:
            self._on_failure(isinstance(exc, signals.Interrupted | KeyboardInterrupt))
            raise
        finally:
            self._unlock()

    def _lock(self) -> None:
        import fcntl

        fd = os.open(os.path.join(self.path, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise GenosegError(f"another genoseg annotate is writing to {self.outdir} with this backbone "
                                   f"(it holds {self.path}/lock); wait for it, or use another --outdir") from None
            raise
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def claim(self, key: dict) -> None:
        """Record the settings of this run; chunk files made with others are dropped."""
        path = os.path.join(self.path, RUN_FILE)
        try:
            with open(path) as fh:
                old = json.load(fh)
        except (OSError, ValueError):
            old = None
        if old != key and os.listdir(self.chunks):
            changed = sorted(k for k in set(key) | set(old or {}) if (old or {}).get(k) != key.get(k))
            log.info("annotate: settings differ from the interrupted run's (%s): its chunks are not reused",
                     ", ".join(changed))
            shutil.rmtree(self.chunks)
            os.makedirs(self.chunks)
        with atomic_path(path, overwrite=True) as tmp, open(tmp, "w") as fh:
            json.dump(key, fh, indent=1)

    def reusable_chunks(self, plan_id: str, chunks: list[dict]) -> set[int]:
        """Chunk numbers whose file is complete and of this plan
        (:func:`genoseg.store.chunk_file_ok`, footer only); any other file in ``chunks/``
        (partial, another plan, not a chunk) is removed."""
        from .store import chunk_file_ok

        wanted = {os.path.basename(self.chunk_file(ch["chunk"])): ch for ch in chunks}
        ok = set()
        for name in os.listdir(self.chunks):
            ch = wanted.get(name)
            if ch is not None and chunk_file_ok(os.path.join(self.chunks, name), plan_id, ch["chunk"]):
                ok.add(ch["chunk"])
            else:
                path = os.path.join(self.chunks, name)
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        return ok

    def _on_failure(self, interrupted: bool) -> None:
        finished = os.path.isdir(self.chunks) and any(f.endswith(".parquet") for f in os.listdir(self.chunks))
        for name in ("stage", "old"):
            shutil.rmtree(os.path.join(self.path, name), ignore_errors=True)
        if finished:
            log.warning("annotate: %s the finished chunks are kept in %s: rerun the same command to resume "
                        "(--no-resume starts over)", "stopped;" if interrupted else "failed;", self.path)
        else:
            self.remove()

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        if self._made_outdir:
            with contextlib.suppress(OSError):
                os.rmdir(self.outdir)  # only if empty: nothing of this run is left

    def done(self) -> None:
        self.remove()


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
