"""Orderly ends on SIGTERM (what Slurm and Nextflow send at a time limit) and SIGINT.

The CLI calls :func:`install`; a signal then raises :class:`Interrupted` in the main
thread, so every ``finally`` and every temporary-file cleanup runs and the command exits
with ``128 + signal`` (130 for SIGINT, 143 for SIGTERM). Inside a :func:`deferred`
block (device work in flight: prediction) the first signal is only recorded and
:func:`check`, called between batches, raises it: the batch on the device finishes,
nothing is torn down under XLA's threads, and the run stops within one batch. A second
signal raises at once. Without :func:`install` (library use) nothing changes.
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
_deferred = 0


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
    # Recorded in any case: library code that swallows the exception raised below
    # (some imports catch BaseException) cannot lose the signal; the next check raises it.
    _pending = signum
    if _deferred and first:
        log.warning("%s received: stopping after the work in flight (send it again to stop at once)",
                    signal.Signals(signum).name)
        return
    raise Interrupted(signum)


def install() -> dict:
    """Route SIGINT and SIGTERM to :class:`Interrupted`; returns the previous handlers
    for :func:`restore`. A no-op off the main thread (Python runs handlers there only)."""
    global _pending
    if threading.current_thread() is not threading.main_thread():
        return {}
    _pending = None
    return {s: signal.signal(s, _handler) for s in HANDLED}


def restore(previous: dict) -> None:
    for s, h in previous.items():
        signal.signal(s, h)


@contextlib.contextmanager
def deferred(check_at_end: bool = True) -> Iterator[None]:
    """Record signals instead of raising them; :func:`check` raises them (and so does
    the end of the block, unless ``check_at_end`` is false: then the next check does)."""
    global _deferred
    _deferred += 1
    try:
        yield
    finally:
        _deferred -= 1
    if check_at_end:
        check()


def check() -> None:
    """Raise :class:`Interrupted` if a signal arrived and has not been raised yet."""
    global _pending
    if _pending is not None:
        signum, _pending = _pending, None
        raise Interrupted(signum)
