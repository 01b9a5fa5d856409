"""Output layout and safe writing.

``OUTDIR/<backbone>/{predictions,calls,tracks,report.html}`` (see ``DESIGN.md``).
Contig names never become paths (the predictions store keeps them in a column; files
are numbered by chunk). Other names that do (backbone, feature) go through
:func:`escape_name`, which makes one safe path component or refuses clearly.
Outputs are written to a temporary sibling and renamed into place only when complete,
so a failed step leaves no partial file; existing outputs are never replaced unless the
caller passes ``overwrite=True``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import urllib.parse
from typing import Iterator, Optional

from .errors import GenosegError

_SAFE = "-_.+=,@"
NAME_MAX = 255  # bytes in one path component on common file systems


def escape_name(name: str) -> str:
    """Percent-encode a contig (or other) name into one safe path component.

    Only ``[A-Za-z0-9-_.+=,@]`` survive; ``/``, spaces and everything else become
    ``%XX``; names made only of dots (``.``, ``..``) are encoded too. Reversible with
    ``urllib.parse.unquote``. A name longer than :data:`NAME_MAX` bytes once escaped is
    refused (GenosegError) rather than failing later in the file system.
    """
    if not name:
        raise GenosegError("empty name cannot be used as a file name")
    out = urllib.parse.quote(name, safe=_SAFE)
    if set(out) <= {"."}:
        out = out.replace(".", "%2E")
    if len(out) + 16 > NAME_MAX:  # room for suffixes such as ".bed.gz.tbi" and temporary names
        raise GenosegError(f"name {name[:40]!r}... is too long for a file name ({len(out)} bytes once escaped, "
                           f"at most {NAME_MAX - 16})")
    return out


def unescape_name(component: str) -> str:
    return urllib.parse.unquote(component)


def backbone_dir(outdir: str, backbone: str) -> str:
    return os.path.join(outdir, escape_name(backbone))


def check_absent(path: str, overwrite: bool) -> None:
    """Refuse to replace an existing output unless ``overwrite``."""
    if os.path.lexists(path) and not overwrite:
        raise GenosegError(f"{path} already exists; remove it or pass --overwrite")


def _partial_tag() -> str:
    """``<host>-<pid>``: who writes a temporary file, so that a later run can tell one
    left by a killed process (same host, process gone) from one still being written."""
    return f"{escape_name(socket.gethostname())}-{os.getpid()}"


def remove_stale_partials(parent: str, base: str) -> int:
    """Remove temporaries of ``parent/base`` left by killed processes of this host
    (``.<base>.<host>-<pid>.*.partial`` whose process is gone); returns how many."""
    prefix, host = f".{base}.", escape_name(socket.gethostname()) + "-"
    removed = 0
    try:
        names = os.listdir(parent)
    except OSError:
        return 0
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".partial")):
            continue
        tag = name[len(prefix):].split(".", 1)[0]
        if not tag.startswith(host) or not tag[len(host):].isdigit() or _alive(int(tag[len(host):])):
            continue
        path = os.path.join(parent, name)
        shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_writable_dir(path: str, what: str) -> None:
    """Refuse (GenosegError) an output directory that is a file, lies under a file, or
    cannot be written (permissions, read-only file system): found by trying, since
    permission bits do not tell for root or read-only mounts."""
    probe = os.path.abspath(path)
    if os.path.lexists(probe) and not os.path.isdir(probe):
        raise GenosegError(f"{what} {path} exists and is not a directory; choose another path")
    while not os.path.isdir(probe):
        parent = os.path.dirname(probe)
        if os.path.lexists(parent) and not os.path.isdir(parent):
            raise GenosegError(f"{what} {path}: {parent} is a file, not a directory; choose another path")
        probe = parent
    reason = write_error(probe)
    if reason:
        raise GenosegError(f"{what} {path}: cannot write in {probe} ({reason}); choose a directory you can write to")


def write_error(directory: str) -> Optional[str]:
    """``None`` when a file can be created in ``directory``, else the system's reason.
    Tried, since permission bits do not tell for root or read-only mounts."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".genoseg-write-test-", dir=directory)
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    os.remove(tmp)
    return None


@contextlib.contextmanager
def atomic_path(final: str, overwrite: bool = False, is_dir: bool = False) -> Iterator[str]:
    """Yield a temporary path next to ``final``; move it into place on success only.

    On any exception (and on SIGINT/SIGTERM, see :mod:`genoseg.signals`) the temporary
    file or directory is removed and ``final`` is left as it was. Temporaries left by a
    process that was killed outright (SIGKILL, a crash) carry its host and pid in their
    name and are removed by the next writer of the same ``final``.
    """
    check_absent(final, overwrite)
    parent = os.path.dirname(os.path.abspath(final)) or "."
    os.makedirs(parent, exist_ok=True)
    base = os.path.basename(final)
    remove_stale_partials(parent, base)
    prefix = f".{base}.{_partial_tag()}."
    if is_dir:
        tmp = tempfile.mkdtemp(prefix=prefix, suffix=".partial", dir=parent)
    else:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".partial", dir=parent)
        os.close(fd)
    # mkstemp/mkdtemp create private (0600/0700) paths; outputs get the usual umask modes.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, (0o777 if is_dir else 0o666) & ~umask)
    try:
        yield tmp
        if os.path.lexists(final):
            if os.path.isdir(final) and not os.path.islink(final):
                shutil.rmtree(final)
            else:
                os.remove(final)
        os.replace(tmp, final)
    except BaseException:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.lexists(tmp):
            os.remove(tmp)
        raise
