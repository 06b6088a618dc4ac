"""Bootstrap confidence intervals and the paired Wilcoxon test."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bench.stats.bootstrap import bootstrap_mean_ci
from bench.stats.paired import paired_wilcoxon


def test_bootstrap_interval_brackets_the_mean_with_the_normal_width() -> None:
    values = np.random.default_rng(3).normal(30.0, 2.0, 400)
    low, high = bootstrap_mean_ci(values)
    assert low < values.mean() < high
    normal_width = 2 * 1.96 * values.std() / math.sqrt(values.size)
    assert high - low == pytest.approx(normal_width, rel=0.15)
    assert bootstrap_mean_ci(values) == (low, high)  # seeded: the same report twice


def test_bootstrap_degenerate_inputs() -> None:
    assert bootstrap_mean_ci(np.array([2.5, 2.5, 2.5])) == (2.5, 2.5)
    low, high = bootstrap_mean_ci(np.array([np.nan, np.inf]))
    assert math.isnan(low) and math.isnan(high)


def test_wilcoxon_all_differences_positive() -> None:
    ids = [f"img{i}" for i in range(10)]
    first = pd.Series(np.arange(10) + 30.5, index=ids)
    second = pd.Series(np.arange(10) + 30.0 - 0.01 * np.arange(10), index=ids)
    test = paired_wilcoxon(first, second)
    # Ten positive differences with distinct ranks: exact two-sided p = 2 / 2^10.
    assert test.n == 10
    assert test.p_value == pytest.approx(2 / 2**10)
    assert test.significant
    assert test.median_difference == pytest.approx(np.median(0.5 + 0.01 * np.arange(10)))


def test_wilcoxon_pairs_by_image_id_not_position() -> None:
    rng = np.random.default_rng(0)
    ids = [f"{i}" for i in range(30)]
    first = pd.Series(rng.normal(30, 1, 30), index=ids)
    second = first - 0.2 + rng.normal(0, 0.05, 30)
    shuffled = second.sample(frac=1.0, random_state=1)
    assert paired_wilcoxon(first, shuffled).p_value == pytest.approx(paired_wilcoxon(first, second).p_value)
    assert paired_wilcoxon(first, second).significant
    extra = pd.concat([second, pd.Series([99.0], index=["only-in-second"])])
    assert paired_wilcoxon(first, extra).n == 30


def test_wilcoxon_no_difference_and_too_few_images() -> None:
    same = pd.Series([1.0, 2.0, 3.0], index=["a", "b", "c"])
    equal = paired_wilcoxon(same, same.copy())
    assert equal.p_value == 1.0 and not equal.significant
    single = paired_wilcoxon(same.iloc[:1], same.iloc[:1] + 1)
    assert single.n == 1 and math.isnan(single.p_value) and not single.significant
    rng = np.random.default_rng(5)
    noise_a, noise_b = pd.Series(rng.normal(0, 1, 40)), pd.Series(rng.normal(0, 1, 40))  # same distribution
    assert not paired_wilcoxon(noise_a, noise_b).significant
