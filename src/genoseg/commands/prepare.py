"""``genoseg prepare``: make a FASTA indexable (decompress gzip) and index it.

Public references are mostly distributed as plain gzip (UCSC, Ensembl, NCBI), which
cannot be indexed for random access. This writes ``--out`` as plain-text FASTA (gzip
and BGZF input are decompressed, plain input is copied) and builds ``--out.fai`` beside
it, checking record names (no duplicates, none empty) on the way. Contig selection is
left to ``genoseg plan``. The output is written to a temporary file and renamed into
place only when complete.
"""

from __future__ import annotations

import argparse
import gzip
import logging
import os
import shutil

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("prepare", help="decompress and index a FASTA for genome runs",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fasta", required=True, help="input FASTA: plain, gzip or bgzip")
    p.add_argument("--out", required=True, help="output plain-text FASTA (its index is written to OUT.fai)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import GenosegError
    from ..fasta import Fasta
    from ..outputs import atomic_path, check_absent

    src, out = args.fasta, args.out
    if not os.path.isfile(src):
        raise GenosegError(f"FASTA not found: {src}")
    if os.path.abspath(src) == os.path.abspath(out) or (os.path.exists(out) and os.path.samefile(src, out)):
        raise GenosegError(f"--out {out} is the input file; choose another name")
    check_absent(out + ".fai", args.overwrite)
    with open(src, "rb") as fh:
        compressed = fh.read(2) == b"\x1f\x8b"
    with atomic_path(out, overwrite=args.overwrite) as tmp:
        opener = gzip.open if compressed else open
        try:
            with opener(src, "rb") as fin, open(tmp, "wb") as fout:
                shutil.copyfileobj(fin, fout, 1 << 22)
        except (OSError, EOFError) as exc:
            raise GenosegError(f"{src}: cannot read{' gzip' if compressed else ''} FASTA: {exc}") from None
    if os.path.lexists(out + ".fai"):
        os.remove(out + ".fai")
    try:
        fa = Fasta(out)  # validates names and builds OUT.fai
    except Exception:
        for p in (out, out + ".fai"):
            if os.path.lexists(p):
                os.remove(p)
        raise
    n, total = len(fa.contigs), sum(c.length for c in fa.contigs)
    fa.close()
    log.info("%s: %d contigs, %d bases; index %s.fai", out, n, total, out)
    return 0
