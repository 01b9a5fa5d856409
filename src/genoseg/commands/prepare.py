"""``genoseg prepare``: make a FASTA indexable (decompress, fix its layout) and index it.

Public references are mostly distributed as plain gzip (UCSC, Ensembl, NCBI), which
cannot be indexed for random access, and FASTA files from other tools often have a
layout faidx refuses. This writes ``--out`` as plain-text FASTA that faidx indexes (gzip
and BGZF input decompressed; line ends made ``\n`` whether they were CR-LF or CR only;
blank lines removed; sequence rewrapped to ``--line-width`` bases; records with a
header but no sequence left out, and listed) and builds ``--out.fai`` beside it,
checking record names (no duplicates, none empty) on the way. Sequence letters are
copied unchanged. Contig selection is left to ``genoseg plan``. The output is written
to a temporary file and renamed into place only when complete.
"""

from __future__ import annotations

import argparse
import gzip
import logging
import os

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("prepare", help="decompress and index a FASTA for genome runs",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fasta", required=True, help="input FASTA: plain, gzip or bgzip")
    p.add_argument("--out", required=True, help="output plain-text FASTA (its index is written to OUT.fai)")
    p.add_argument("--line-width", type=int, default=60, help="bases per sequence line (default 60)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import GenosegError
    from ..fasta import Fasta, normalise
    from ..outputs import atomic_path, check_absent

    src, out = args.fasta, args.out
    if not os.path.isfile(src):
        raise GenosegError(f"FASTA not found: {src}")
    if os.path.abspath(src) == os.path.abspath(out) or (os.path.exists(out) and os.path.samefile(src, out)):
        raise GenosegError(f"--out {out} is the input file; choose another name")
    if args.line_width < 1:
        raise GenosegError(f"--line-width must be at least 1, got {args.line_width}")
    check_absent(out + ".fai", args.overwrite)
    with open(src, "rb") as fh:
        compressed = fh.read(2) == b"\x1f\x8b"
    with atomic_path(out, overwrite=args.overwrite) as tmp:
        opener = gzip.open if compressed else open
        try:
            with opener(src, "rb") as fin, open(tmp, "wb") as fout:
                stats = normalise(fin, fout, args.line_width)
        except (OSError, EOFError) as exc:
            raise GenosegError(f"{src}: cannot read{' gzip' if compressed else ''} FASTA: {exc}") from None
        except GenosegError as exc:
            raise GenosegError(f"{src}: {exc}") from None
    if stats["dropped"]:
        log.warning("%s: left out %d record(s) with a header but no sequence: %s", src, len(stats["dropped"]),
                    ", ".join(map(repr, stats["dropped"][:10])) + (" ..." if len(stats["dropped"]) > 10 else ""))
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
