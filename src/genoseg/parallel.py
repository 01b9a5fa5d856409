"""Cores available to a task, and running independent jobs in worker processes.

Stages split their work into jobs whose outputs do not depend on how they are grouped
(calling and tracks: one job per group of features), so the result is byte-identical
whatever ``--threads`` is.
"""

from __future__ import annotations

import os
from typing import Callable, Optional, Sequence

from .errors import GenosegError

#: Environment variables through which batch schedulers give a task its cores.
SCHEDULER_CPU_VARS = ("GENOSEG_THREADS", "SLURM_CPUS_PER_TASK", "NSLOTS", "LSB_DJOB_NUMPROC", "PBS_NUM_PPN")


def available_cores() -> int:
    """Cores this task may use: the first of :data:`SCHEDULER_CPU_VARS` that is set to a
    positive integer (Slurm, SGE/UGE, LSF, PBS, ...), bounded by the CPU affinity mask
    (``os.sched_getaffinity``, which cgroups/taskset restrict), else that mask."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    for var in SCHEDULER_CPU_VARS:
        v = os.environ.get(var, "").strip()
        if v.isdigit() and int(v) > 0:
            return max(1, min(int(v), cores))
    return max(1, cores)


def check_threads(threads: Optional[int], what: str = "--threads") -> int:
    """``None`` -> :func:`available_cores`; otherwise an integer >= 1 (GenosegError)."""
    if threads is None:
        return available_cores()
    if isinstance(threads, bool) or int(threads) != threads or threads < 1:
        raise GenosegError(f"{what} must be an integer >= 1 (got {threads!r}); omit it to use the "
                           f"task's cores ({available_cores()})")
    return int(threads)


def run_jobs(fn: Callable, jobs: Sequence[tuple], processes: int) -> list:
    """``[fn(*job) for job in jobs]``, in up to ``processes`` worker processes (spawned,
    not forked: the parent may hold JAX/XLA threads) or in this process when 1."""
    processes = max(1, min(int(processes), len(jobs)))
    if processes == 1:
        return [fn(*job) for job in jobs]
    import concurrent.futures as cf
    import multiprocessing as mp

    from . import signals

    ex = cf.ProcessPoolExecutor(processes, mp_context=mp.get_context("spawn"), initializer=_worker_init)
    try:
        # The parent decides how a run ends: a signal raises here at once, and the
        # workers (which ignore Ctrl-C, sent to the whole process group) are stopped.
        with signals.immediate():
            try:
                return list(ex.map(fn, *zip(*jobs)))
            except cf.process.BrokenProcessPool:
                signals.check()  # workers killed by the SIGTERM a scheduler sends every process
                raise
    except BaseException:
        for proc in list((getattr(ex, "_processes", None) or {}).values()):
            proc.terminate()
        raise
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def _worker_init() -> None:
    """Workers leave SIGINT to the parent (a terminal's Ctrl-C reaches every process of
    the group; without this each worker would print its own traceback)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


#: Rows per worker process below which more processes cost more (start-up: ~0.5-1 s
#: each) than they save.
MIN_ROWS_PER_PROCESS = 4_000_000


def processes_for(threads: int, rows: int) -> int:
    """Worker processes worth starting for ``rows`` rows with ``threads`` allowed."""
    return max(1, min(int(threads), -(-int(rows) // MIN_ROWS_PER_PROCESS)))


def split_round_robin(n_items: int, parts: int) -> list[list[int]]:
    """Indices ``0..n_items-1`` dealt into at most ``parts`` non-empty groups."""
    parts = max(1, min(parts, n_items))
    return [list(range(k, n_items, parts)) for k in range(parts)]


def add_threads_option(parser) -> None:
    """``--threads N`` (validated by :func:`check_threads` where it is used)."""
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="worker processes (default: the task's cores: SLURM_CPUS_PER_TASK, NSLOTS, "
                             "LSB_DJOB_NUMPROC, PBS_NUM_PPN or the CPU affinity mask); the output is identical "
                             "whatever N")
