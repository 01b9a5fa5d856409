"""Orderly ends on SIGTERM (what Slurm and Nextflow send at a time limit) and SIGINT.

The CLI calls :func:`install`. From then on a signal is first only *recorded*: raising
an exception at an arbitrary point can crash the interpreter when that point is inside
a C extension (seen: a Ctrl-C while jaxlib initialises segfaults) or leave XLA work
half torn down. The recorded signal is raised as :class:`Interrupted` by :func:`check`,
which long-running steps call at safe points (between prediction batches and chunks,
between annotate's steps), and at once inside :func:`immediate` blocks (steps that are
plain Python/numpy work with their imports done). A second signal raises at once
anywhere. The main thread then unwinds: every ``finally`` and temporary-file cleanup
runs, and the CLI exits with ``128 + signal`` (130 for SIGINT, 143 for SIGTERM).
Without :func:`install` (library use) nothing changes.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from typing import Iterator, Optional

log = logging.getLogger(__name__)

HANDLED = (signal.SIGINT, signal.SIGTERM)
_pending: Optional[int] = None
_immediate = 0


class Interrupted(BaseException):
    """A run stopped by a signal. A ``BaseException`` (like ``KeyboardInterrupt``) so
    that no ``except Exception`` treats it as an error to recover from."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = int(signum)

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def _handler(signum, frame) -> None:
    global _pending
    first = _pending is None
    # Recorded in any case, so that library code that swallows the exception raised
    # below (some imports catch BaseException) cannot lose the signal.
    _pending = signum
    if first and not _immediate:
        log.warning("%s received: stopping at the next safe point (send it again to stop at once)",
                    signal.Signals(signum).name)
        return
    raise Interrupted(signum)


def install() -> dict:
    """Record SIGINT and SIGTERM (see the module docstring); returns the previous
    handlers for :func:`restore`. A no-op off the main thread."""
    global _pending, _immediate
    if threading.current_thread() is not threading.main_thread():
        return {}
    _pending, _immediate = None, 0
    return {s: signal.signal(s, _handler) for s in HANDLED}


def restore(previous: dict) -> None:
    global _pending
    for s, h in previous.items():
        signal.signal(s, h)
    _pending = None


@contextlib.contextmanager
def immediate() -> Iterator[None]:
    """A block in which a signal raises at once (import what it needs before)."""
    global _immediate
    check()
    _immediate += 1
    try:
        yield
    finally:
        _immediate -= 1


def check() -> None:
    """Raise :class:`Interrupted` if a signal was recorded and not raised yet."""
    global _pending
    if _pending is not None:
        signum, _pending = _pending, None
        raise Interrupted(signum)
