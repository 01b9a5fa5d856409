"""Random sequences and FASTA files for tests (one definition for every test module)."""

from __future__ import annotations


def rand_seq(rng, n, alphabet="ACGTacgt"):
    """``n`` bases drawn uniformly from ``alphabet`` with the numpy Generator ``rng``."""
    return "".join(rng.choice(list(alphabet), n))


def write_fasta(path, records, width=60, description=""):
    """``records`` ``[(name, sequence)]`` as a FASTA of ``width``-column lines (headers
    ``>name description`` when a description is given); returns the path."""
    suffix = f" {description}" if description else ""
    with open(path, "w", encoding="utf-8") as fh:
        for name, seq in records:
            fh.write(f">{name}{suffix}\n")
            for i in range(0, len(seq), width):
                fh.write(seq[i:i + width] + "\n")
    return str(path)
