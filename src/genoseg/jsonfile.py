"""Reading small JSON files (configs, plans, timings) with errors that name the file."""

from __future__ import annotations

import json
import os
from typing import Any

from .errors import GenosegError

_REQUIRED = object()


def read_json(path: str, what: str, error: type[GenosegError] = GenosegError,
              default: Any = _REQUIRED) -> Any:
    """Parse the JSON file at ``path``.

    Args:
        path: the file.
        what: what the file is, for messages (e.g. ``"plan"``).
        error: the :class:`GenosegError` subclass to raise.
        default: returned when the file does not exist; without it a missing file is an
            error.

    Raises:
        ``error`` naming the file when it is missing (and no default) or not valid JSON.
    """
    if not os.path.isfile(path):
        if default is not _REQUIRED:
            return default
        raise error(f"{what} file {path} does not exist")
    try:
        with open(path) as fh:
            return json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{what} file {path} is not valid JSON: {exc}") from None
