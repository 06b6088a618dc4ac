"""Percentile bootstrap confidence interval of a mean over images."""

from __future__ import annotations

import numpy as np


def bootstrap_mean_ci(values: np.ndarray, confidence: float = 0.95, resamples: int = 2000,
                      seed: int = 0) -> tuple[float, float]:
    """(low, high) percentile-bootstrap CI of the mean of ``values`` (seeded, so reports are stable).

    A single value (or identical values) gives a zero-width interval.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    if values.size == 1 or np.all(values == values[0]):
        return float(values[0]), float(values[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.size, size=(resamples, values.size))
    means = values[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)
