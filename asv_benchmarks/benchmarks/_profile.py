"""Benchmark sizes: the full profile by default, a fast one for CI.

``FASTNTK_ASV_PROFILE=fast asv run --python=same --quick`` runs every benchmark once on
small inputs (a few minutes in all), so that CI notices when a benchmark rots; the full
profile is what the figures in the README come from.
"""
import os

FAST = os.environ.get("FASTNTK_ASV_PROFILE", "full") == "fast"


def size(full, fast):
    """``full`` normally, ``fast`` under the fast profile."""
    return fast if FAST else full
