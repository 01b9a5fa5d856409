"""``genoseg simulate``: a deterministic synthetic genome with planted elements and its truth GFF3."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def register(sub) -> None:
    from ..simulate import DEFAULT_SEED

    p = sub.add_parser("simulate", help="write a synthetic genome (FASTA + .fai) and its truth GFF3",
                       description=__doc__)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help=f"random seed; the same seed gives identical files (default {DEFAULT_SEED}; "
                        "the demo model was trained on seeds 1001-1012)")
    p.add_argument("--out", required=True, help="output directory: genome.fa, genome.fa.fai, truth.gff3")
    p.add_argument("--length-scale", type=float, default=1.0,
                   help="multiply the long contigs' lengths (default 1.0: about 470 kb in 4 contigs)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..simulate import simulate_genome, write_simulation

    genome = simulate_genome(args.seed, length_scale=args.length_scale)
    paths = write_simulation(genome, args.out, overwrite=args.overwrite)
    counts = genome.features["feature"].value_counts()
    log.info("wrote %s (%d contigs, %d bp) and %s (%s)", paths["fasta"], len(genome.contigs),
             sum(map(len, genome.contigs.values())), paths["truth"],
             ", ".join(f"{n} {k}" for k, n in counts.items()))
    return 0
