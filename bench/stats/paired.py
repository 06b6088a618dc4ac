"""Paired significance test between two methods on the same images (Wilcoxon signed-rank)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05


@dataclass(frozen=True)
class PairedTest:
    """Two-sided Wilcoxon signed-rank test on per-image differences (first minus second)."""

    n: int  # images scored by both methods (finite values)
    p_value: float  # 1.0 when every difference is zero; nan when fewer than 2 pairs
    median_difference: float

    @property
    def significant(self) -> bool:
        """True when p < ALPHA (0.05)."""
        return not math.isnan(self.p_value) and self.p_value < ALPHA


def paired_wilcoxon(first: pd.Series, second: pd.Series) -> PairedTest:
    """Compare two methods' per-image figures, paired by index (image id), never by position.

    first, second: Series indexed by image id. Images missing from either, or non-finite, are dropped.
    """
    joined = pd.concat([first.rename("a"), second.rename("b")], axis=1, join="inner").astype(np.float64)
    joined = joined[np.isfinite(joined["a"]) & np.isfinite(joined["b"])]
    diff = (joined["a"] - joined["b"]).to_numpy()
    n = int(diff.size)
    if n < 2:
        return PairedTest(n, float("nan"), float(np.median(diff)) if n else float("nan"))
    if np.all(diff == 0):
        return PairedTest(n, 1.0, 0.0)
    with warnings.catch_warnings():  # small samples: scipy warns about the normal approximation
        warnings.simplefilter("ignore")
        result = stats.wilcoxon(diff, zero_method="wilcox", alternative="two-sided")
    return PairedTest(n, float(result.pvalue), float(np.median(diff)))
