"""Per-cell statistics from the results store (the long-format table every renderer starts from)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.results.store import ANY, ResultsStore
from bench.stats.bootstrap import bootstrap_mean_ci
from bench.tasks.dataset_figures import downstream_summary

SUMMARY_COLUMNS = ["method", "dataset", "metric", "profile", "n", "mean", "ci_low", "ci_high"]


@dataclass
class StoreSnapshot:
    """What a report needs, read once: per-image results of the latest weights of each method."""

    results: pd.DataFrame  # one row per image figure, with a "spec" column (e.g. prenet:rain100l)
    methods: pd.DataFrame  # spec, label, kind, paper, note, weights_hash, weights
    failures: pd.DataFrame
    unavailable: pd.DataFrame
    runs: pd.DataFrame
    task_results: pd.DataFrame  # per-image downstream records, with a "spec" column
    task_references: pd.DataFrame
    task_setups: pd.DataFrame  # task model, label spaces and mapping per (dataset, task model, reference)


def read_snapshot(store: ResultsStore, methods: list[str] | None = None,
                  datasets: list[str] | None = None) -> StoreSnapshot:
    """Latest weights per (method, variant); optional filters by method spec and dataset name."""
    meth = store.methods().sort_values("created").groupby(["method", "variant"], as_index=False).last()
    res = store.results().merge(meth[["method", "variant", "weights_hash", "spec"]],
                                on=["method", "variant", "weights_hash"], how="inner")
    if methods:
        meth = meth[meth["spec"].isin(methods)]
        res = res[res["spec"].isin(methods)]
    if datasets:
        res = res[res["dataset"].isin(datasets) | (res["dataset"] == ANY)]
    fails = store.failures().merge(meth[["method", "variant", "weights_hash", "spec"]],
                                   on=["method", "variant", "weights_hash"], how="inner")
    if datasets:
        fails = fails[fails["dataset"].isin(datasets)]
    tasks = store.task_results().merge(meth[["method", "variant", "weights_hash", "spec"]],
                                       on=["method", "variant", "weights_hash"], how="inner")
    if datasets:
        tasks = tasks[tasks["dataset"].isin(datasets)]
    return StoreSnapshot(res, meth, fails, store.unavailable(), store.runs(), tasks, store.task_references(),
                         store.task_setups())


def summarise(snapshot: StoreSnapshot) -> pd.DataFrame:
    """One row per (method spec, dataset, metric, profile): n, mean and 95% bootstrap CI over images."""
    rows = []
    for (spec, dataset, metric, profile), group in snapshot.results.groupby(["spec", "dataset", "metric", "profile"]):
        values = group["value"].to_numpy(dtype=np.float64)
        finite = values[np.isfinite(values)]
        low, high = bootstrap_mean_ci(finite)
        mean = float(finite.mean()) if finite.size else float("nan")
        rows.append((spec, dataset, metric, profile, int(values.size), mean, low, high))
    rows += downstream_summary(snapshot.task_results, snapshot.task_references, snapshot.task_setups)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
