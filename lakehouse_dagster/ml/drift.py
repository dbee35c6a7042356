"""Drift of a score distribution: the population stability index (PSI)."""

from __future__ import annotations

import numpy as np

#: Score bins of probabilities: tenths of [0, 1].
PROBABILITY_BINS = np.linspace(0.0, 1.0, 11)
_FLOOR = 1e-4


def population_stability_index(
    previous: np.ndarray, current: np.ndarray, edges: np.ndarray = PROBABILITY_BINS
) -> float:
    """sum((current share - previous share) * ln(current share / previous share)) over the bins;
    an empty bin counts as a share of 1e-4. 0 means the same distribution; above 0.2 is usually
    read as a shift."""
    if len(previous) == 0 or len(current) == 0:
        raise ValueError("the PSI needs two non-empty distributions")
    shares = [
        np.maximum(np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)[0] / len(values), _FLOOR)
        for values in (previous, current)
    ]
    return float(np.sum((shares[1] - shares[0]) * np.log(shares[1] / shares[0])))
