"""User-facing errors.

A :class:`GenosegError` is a problem with the user's input or environment (a missing
file, a malformed FASTA, an incompatible model directory). The CLI prints its message as
one line and exits with status 2; anything else is a bug and gets a traceback.
"""


class GenosegError(Exception):
    """An error the user can fix; the message names what is wrong and how to fix it."""


class CheckpointError(GenosegError):
    """A checkpoint file is missing, malformed or refused as unsafe."""
