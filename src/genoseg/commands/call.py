"""``genoseg call``: probabilities → intervals per feature (bgzipped+tabix BED, GFF3).

Hysteresis thresholding (enter at p >= HIGH, extend while p >= LOW), gap merging
(segments at most N bp apart are joined; never across bases without a prediction), then
a minimum length. Defaults per feature: ``genoseg.calls.DEFAULT_PARAMS``. Coordinates:
BED 0-based half-open, GFF3 1-based closed.
"""

from __future__ import annotations

import argparse
import logging

from ..parallel import add_threads_option

log = logging.getLogger(__name__)


def register(sub) -> None:
    from ..calls import DEFAULT_PARAMS, GENERIC_PARAMS

    table = "; ".join(f"{f} {p.high}:{p.low} min {p.min_length} gap {p.merge_gap}" for f, p in DEFAULT_PARAMS.items())
    p = sub.add_parser("call", help="call intervals from a prediction dataset (BED + GFF3)",
                       description=__doc__ + f"\nDefaults (HIGH:LOW, min-length, merge-gap): {table}; "
                       f"other features {GENERIC_PARAMS.high}:{GENERIC_PARAMS.low} min {GENERIC_PARAMS.min_length} "
                       f"gap {GENERIC_PARAMS.merge_gap}.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--predictions", required=True, help="prediction dataset: OUTDIR/<backbone>/predictions")
    p.add_argument("--outdir", required=True, help="output directory for <feature>.bed.gz(.tbi) and calls.gff3")
    p.add_argument("--threshold", action="append", default=[], metavar="FEATURE=HIGH[:LOW]",
                   help="hysteresis thresholds (LOW defaults to HIGH: a plain threshold); FEATURE 'all' "
                        "sets every feature; repeatable")
    p.add_argument("--min-length", action="append", default=[], metavar="FEATURE=N",
                   help="drop calls shorter than N bp; repeatable")
    p.add_argument("--merge-gap", action="append", default=[], metavar="FEATURE=N",
                   help="merge calls separated by at most N bp; repeatable")
    p.add_argument("--features", default=None, help="comma-separated subset of features to call (default: all)")
    p.add_argument("--fai", default=None,
                   help="FASTA .fai for ##sequence-region lengths (default: last predicted base); every contig "
                        "of the predictions must be in it, no longer than it says")
    add_threads_option(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing --outdir")
    p.set_defaults(func=run)


def _split(item: str, flag: str) -> tuple[str, str]:
    from ..errors import GenosegError

    feat, sep, val = item.rpartition("=")
    if not sep or not feat or not val:
        raise GenosegError(f"{flag} {item!r}: expected FEATURE=VALUE")
    return feat, val


def parse_overrides(thresholds, min_lengths, merge_gaps) -> dict:
    """CLI strings → ``params`` dict for :func:`genoseg.calls.call_dataset`."""
    from ..errors import GenosegError

    params: dict[str, dict] = {}
    for item in thresholds:
        feat, val = _split(item, "--threshold")
        hi, _, lo = val.partition(":")
        try:
            h = float(hi)
            l = float(lo) if lo else h
        except ValueError:
            raise GenosegError(f"--threshold {item!r}: HIGH and LOW must be numbers in [0, 1]") from None
        params.setdefault(feat, {}).update(high=h, low=l)
    for flag, key, items in (("--min-length", "min_length", min_lengths), ("--merge-gap", "merge_gap", merge_gaps)):
        for item in items:
            feat, val = _split(item, flag)
            try:
                params.setdefault(feat, {})[key] = int(val)
            except ValueError:
                raise GenosegError(f"{flag} {item!r}: N must be an integer number of bp") from None
    return params


def run(args: argparse.Namespace) -> int:
    from ..calls import call_dataset
    from ..parallel import check_threads

    threads = check_threads(args.threads)
    params = parse_overrides(args.threshold, args.min_length, args.merge_gap)
    features = [f.strip() for f in args.features.split(",") if f.strip()] if args.features else None
    call_dataset(args.predictions, args.outdir, params, overwrite=args.overwrite, features=features,
                 chrom_sizes=args.fai, threads=threads)
    return 0
