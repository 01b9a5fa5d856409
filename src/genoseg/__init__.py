"""genoseg: single-base genome annotation with published segmentation models.

Coordinates throughout the package are 0-based, half-open ``[start, end)`` unless a
docstring says otherwise (GFF3 output is 1-based closed, as that format requires).
"""

__version__ = "0.1.0"
