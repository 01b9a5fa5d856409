"""The ``genoseg`` command line.

Each subcommand lives in ``genoseg.commands.<name>`` and provides
``register(subparsers)`` (adds its parser, with ``func`` set to its runner) so that this
file only lists them. A :class:`~genoseg.errors.GenosegError` or ``ValueError`` from a
runner is a user error: one line on stderr, exit status 2 (traceback with ``--debug``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Optional, Sequence

from . import __version__
from .errors import GenosegError

log = logging.getLogger("genoseg")

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
    "prepare",
)


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
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded in run reports
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    # JAX logs its search for TPU/GPU backends at INFO; that is noise for users.
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except (GenosegError, ValueError, FileNotFoundError) as exc:
        if args.debug:
            raise
        print(f"genoseg {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genoseg: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
