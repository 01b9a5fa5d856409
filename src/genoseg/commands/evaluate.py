"""``genoseg evaluate``: base-level precision, recall and F1 per feature of calls against a truth GFF3."""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="compare called intervals with a truth GFF3 (base-level P/R/F1)",
                       description=__doc__)
    p.add_argument("--truth", required=True, help="truth GFF3 (type column = feature name), e.g. from genoseg simulate")
    p.add_argument("--calls", required=True, help="calls directory holding <feature>.bed.gz (genoseg call)")
    p.add_argument("--fai", default=None, help="FASTA index: clip intervals to the contigs, drop unknown contigs")
    p.add_argument("--features", default=None,
                   help="comma-separated features to evaluate (default: all in the truth or the calls)")
    p.add_argument("--out", default=None, help="write the table as TSV here (last row: mean F1)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    from ..evaluate import evaluate_calls, format_table
    from ..outputs import atomic_path

    features = [f for f in args.features.split(",") if f] if args.features else None
    if features is not None:
        check_features(features, args.calls, args.truth)
    df = evaluate_calls(args.truth, args.calls, features=features, fai=args.fai)
    sys.stdout.write(format_table(df))
    if args.out:
        mean = pd.DataFrame([{"feature": "mean", "f1": df.attrs["mean_f1"]}])
        table = pd.concat([df, mean], ignore_index=True)
        with atomic_path(args.out, overwrite=args.overwrite) as tmp:
            table.to_csv(tmp, sep="\t", index=False, na_rep="NA", float_format="%.6f")
        log.info("wrote %s", args.out)
    if np.isnan(df.attrs["mean_f1"]):
        log.warning("no feature is both in the truth and called: mean F1 undefined")
    return 0


def check_features(features: list, calls_dir: str, truth: str) -> None:
    """Refuse a ``--features`` name that is neither called nor in the truth (a typo),
    listing the names that are."""
    import os
    import urllib.parse

    from ..errors import GenosegError
    from ..evaluate import read_gff3

    if not features:
        raise GenosegError("--features: give one or more comma-separated feature names")
    called = sorted(urllib.parse.unquote(f[:-len(".bed.gz")]) for f in os.listdir(calls_dir)
                    if f.endswith(".bed.gz")) if os.path.isdir(calls_dir) else []
    known = set(called) | set(read_gff3(truth)["feature"])
    unknown = [f for f in features if f not in known]
    if unknown:
        raise GenosegError(f"--features: {', '.join(map(repr, unknown))} neither called in {calls_dir} nor in "
                           f"{truth}; called features: {', '.join(called) or 'none'}")
