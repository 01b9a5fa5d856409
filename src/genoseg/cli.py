"""The ``genoseg`` command line.

Each subcommand lives in ``genoseg.commands.<name>`` and provides
``register(subparsers)`` (adds its parser, with ``func`` set to its runner) so that this
file only lists them. A :class:`~genoseg.errors.GenosegError` or ``ValueError`` from a
runner is a user error: one line on stderr, exit status 2 (traceback with ``--debug``);
so are file-system errors a user fixes (permissions, a file where a directory belongs, a
full disk). SIGINT / SIGTERM end a command with status 130 / 143 (see
:mod:`genoseg.signals`). 69: the requested device is not available (``--device gpu``
without a GPU); 75: out of accelerator memory while loading, compiling or predicting
(retry with a smaller ``--batch-size``); see :mod:`genoseg.device`.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys
from typing import Optional, Sequence

from . import __version__, signals
from .device import EXIT_DEVICE_OOM, EXIT_DEVICE_UNAVAILABLE, DeviceUnavailable, is_device_oom, oom_message
from .errors import GenosegError

log = logging.getLogger("genoseg")

#: OSErrors that are the user's to fix (one line, exit status 2), not bugs.
USER_OS_ERRORS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR,
                  errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG}

# Order is the order shown in --help.
COMMANDS = (
    "predict_seq",
    "plan",
    "predict",
    "collect",
    "annotate",
    "simulate",
    "evaluate",
    "call",
    "genes",
    "tracks",
    "report",
    "fetch_model",
    "convert_model",
    "prepare",
)


#: Commands whose work is plain Python/numpy/Arrow (no JAX): a signal stops them at once
#: (their outputs are staged and cleaned up in ``finally``); the others stop at safe points.
NUMPY_ONLY = frozenset({"collect", "call", "tracks", "report", "evaluate", "simulate", "prepare", "genes"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genoseg",
        description="Single-base genome annotation with SegmentNT, SegmentEnformer and SegmentBorzoi.",
    )
    parser.add_argument("--version", action="version", version=f"genoseg {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f".commands.{name}", __package__).register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    previous = signals.install()  # first: a Ctrl-C while the libraries load exits cleanly too
    command = "genoseg"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded in run reports
        command = f"genoseg {args.command}"
        logging.basicConfig(
            level=logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO,
            format="%(asctime)s %(levelname)s %(message)s",
            datefmt="%H:%M:%S",
            stream=sys.stderr,
            force=True,
        )
        # JAX logs its search for TPU/GPU backends at INFO; that is noise for users.
        logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
        signals.check()  # a signal during start-up (imports) stops here
        try:
            if args.command in NUMPY_ONLY:
                with signals.immediate():
                    return int(args.func(args) or 0)
            return int(args.func(args) or 0)
        except DeviceUnavailable as exc:
            if args.debug:
                raise
            print(f"{command}: error: {exc}", file=sys.stderr)
            return EXIT_DEVICE_UNAVAILABLE
        except (GenosegError, ValueError, FileNotFoundError) as exc:
            if args.debug:
                raise
            print(f"{command}: error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            # the user's file system: permissions, a file where a directory should be, a full disk
            if args.debug or exc.errno not in USER_OS_ERRORS:
                raise
            print(f"{command}: error: {exc.filename or ''}: {exc.strerror}", file=sys.stderr)
            return 2
        except Exception as exc:
            # Out of accelerator memory while loading, compiling or predicting: a distinct
            # status so that schedulers retry with a smaller batch.
            if args.debug or not is_device_oom(exc):
                raise
            print(f"{command}: error: {oom_message(args)}", file=sys.stderr)
            log.debug("device out of memory", exc_info=exc)
            return EXIT_DEVICE_OOM
    except signals.Interrupted as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    finally:
        signals.restore(previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
