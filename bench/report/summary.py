"""Per-cell statistics from the results store (the long-format table every renderer starts from).

A method is named by its canonical spec (``prenet:rain100h``; see :func:`bench.methods.api.canonical_spec`),
recomputed from the stored (method, variant), so stores written before specs carried the default variant
read the same. Figures measured in reduced precision (``bench run --precision bf16``) form rows of their own,
``prenet:rain100h@bf16``, labelled ``PReNet (rain100h) [bf16]``. A column of a table is (dataset, metric,
profile); by default every row of a column is measured on the images all its rows share (``common_n``), so
a method run with ``--limit 3`` is compared with the Rainy row on those 3 images, not against Rainy's mean
over 100.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd

from bench.methods.api import canonical_spec, variant_label
from bench.results.store import ANY, FP32, ResultsStore
from bench.stats.bootstrap import bootstrap_mean_ci
from bench.tasks.dataset_figures import downstream_summary

SUMMARY_COLUMNS = ["method", "label", "dataset", "metric", "profile", "n", "common_n", "mean", "ci_low", "ci_high"]
ImageSet = Literal["shared", "all"]
IMAGE_SETS: tuple[str, ...] = ("shared", "all")


@dataclass
class StoreSnapshot:
    """What a report needs, read once: per-image results of the latest weights of each method."""

    results: pd.DataFrame  # one row per image figure, with a "spec" column (e.g. prenet:rain100l)
    methods: pd.DataFrame  # spec (canonical, @precision unless fp32), label (with the variant and [precision]), kind,
    #                        paper, note, weights_hash, weights, precision
    failures: pd.DataFrame
    unavailable: pd.DataFrame
    runs: pd.DataFrame
    task_results: pd.DataFrame  # per-image downstream records, with a "spec" column
    task_references: pd.DataFrame
    task_setups: pd.DataFrame  # task model, label spaces and mapping per (dataset, task model, reference)


def _requested_spec(spec: str) -> tuple[str, str | None, str | None]:
    """(name, variant or None, canonical spec or None when the registry cannot tell the default variant)."""
    from bench.errors import BenchError
    from bench.methods.registry import parse_method_spec, resolve_method_spec

    name, variant = parse_method_spec(spec)
    if variant is not None:
        return name, variant, canonical_spec(name, variant)
    try:
        return name, None, resolve_method_spec(spec)
    except BenchError:  # a plugin not installed here: match what the store itself says
        return name, None, None


def select_methods(meth: pd.DataFrame, requested: list[str]) -> pd.Series:
    """Mask of the stored methods that ``requested`` specs name: ``prenet`` and ``prenet:rain100h`` give the
    same rows; an old store's short spec (``prenet``) still matches when the plugin is not installed."""
    keep = pd.Series(False, index=meth.index)
    for spec in requested:
        name, variant, canonical = _requested_spec(spec)
        if canonical is not None:
            keep |= meth["spec"] == canonical
            continue
        # the plugin is not installed here: an old store's short spec for its default variant, the unnamed
        # variant, or the only variant stored
        same = meth["method"] == name
        keep |= same & ((meth["stored_spec"] == spec) | (meth["variant"] == "default") | (same.sum() == 1))
    return keep


def read_snapshot(store: ResultsStore, methods: list[str] | None = None,
                  datasets: list[str] | None = None) -> StoreSnapshot:
    """Latest weights per (method, variant); optional filters by method spec and dataset name."""
    meth = store.methods().sort_values("created").groupby(["method", "variant"], as_index=False).last()
    meth["stored_spec"] = meth["spec"]
    meth["spec"] = [canonical_spec(m, v) for m, v in zip(meth["method"], meth["variant"], strict=True)]
    meth["label"] = [variant_label(m if pd.isna(label) or not label else str(label), v)
                     for label, m, v in zip(meth["label"], meth["method"], meth["variant"], strict=True)]
    if methods:
        meth = meth[select_methods(meth, methods)]
    keys = meth[["method", "variant", "weights_hash", "spec"]]
    res = store.results().merge(keys, on=["method", "variant", "weights_hash"], how="inner")
    if datasets:
        res = res[res["dataset"].isin(datasets) | (res["dataset"] == ANY)]
    fails = store.failures().merge(keys, on=["method", "variant", "weights_hash"], how="inner")
    if datasets:
        fails = fails[fails["dataset"].isin(datasets)]
    tasks = store.task_results().merge(keys, on=["method", "variant", "weights_hash"], how="inner")
    if datasets:
        tasks = tasks[tasks["dataset"].isin(datasets)]
    meth = _rows_per_precision(meth, [res, fails, tasks])
    unavailable = store.unavailable()
    if methods:  # methods that could not run: only those asked for (datasets and metrics stay)
        named = unavailable.assign(spec=[canonical_spec(m, v) for m, v in zip(unavailable["method"], unavailable["variant"],
                                                                                strict=True)])
        named["stored_spec"] = named["spec"]
        keep = ~unavailable["kind"].isin(["method", "method-dataset"]) | select_methods(named, methods)
        unavailable = unavailable[keep]
    return StoreSnapshot(res, meth, fails, unavailable, store.runs(), tasks, store.task_references(),
                         store.task_setups())


def precision_spec(spec: str, precision: str) -> str:
    """The row name of ``spec``'s figures in ``precision``: the spec itself for fp32, else ``spec@precision``."""
    return spec if precision == FP32 else f"{spec}@{precision}"


def _rows_per_precision(meth: pd.DataFrame, frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Renames the spec of every reduced-precision figure in ``frames`` (in place) and gives it a methods row
    of its own, a copy of its fp32 row labelled ``[bf16]``."""
    meth = meth.assign(precision=FP32)
    extra = {}
    for frame in frames:
        reduced = frame["precision"] != FP32
        if reduced.any():
            for spec, precision in set(zip(frame.loc[reduced, "spec"], frame.loc[reduced, "precision"], strict=True)):
                extra[precision_spec(spec, precision)] = (spec, precision)
            frame.loc[reduced, "spec"] = [precision_spec(s, p) for s, p in
                                          zip(frame.loc[reduced, "spec"], frame.loc[reduced, "precision"], strict=True)]
    rows = []
    for spec, (base, precision) in sorted(extra.items()):
        row = meth[meth["spec"] == base].iloc[0].copy()
        row["spec"], row["label"], row["precision"] = spec, f"{row['label']} [{precision}]", precision
        rows.append(row)
    return pd.concat([meth, pd.DataFrame(rows)], ignore_index=True) if rows else meth


def at_precision(snapshot: StoreSnapshot, precision: str = FP32) -> StoreSnapshot:
    """Only the figures measured in ``precision`` (the published-figure check uses fp32 alone)."""
    return replace(
        snapshot, results=snapshot.results[snapshot.results["precision"] == precision],
        methods=snapshot.methods[snapshot.methods["precision"] == precision],
        failures=snapshot.failures[snapshot.failures["precision"] == precision],
        task_results=snapshot.task_results[snapshot.task_results["precision"] == precision])


def _cell(values: np.ndarray) -> tuple[float, float, float]:
    finite = values[np.isfinite(values)]
    low, high = bootstrap_mean_ci(finite)
    return (float(finite.mean()) if finite.size else float("nan")), low, high


def summarise(snapshot: StoreSnapshot, images: ImageSet = "shared") -> pd.DataFrame:
    """One row per (method spec, dataset, metric, profile): n (images the method was measured on), common_n
    (images every method of that column has), mean and 95% bootstrap CI over images.

    images: ``shared`` (default) takes mean and CI over the common_n shared images, so every row of a column
    is measured on the same images; ``all`` over each method's own n images. Downstream figures are
    dataset-level and already computed over shared images (common_n = n).
    """
    if images not in IMAGE_SETS:
        raise ValueError(f"images={images!r}: choose one of {', '.join(IMAGE_SETS)}")
    labels = dict(zip(snapshot.methods["spec"], snapshot.methods["label"], strict=True))
    rows = []
    for (dataset, metric, profile), column in snapshot.results.groupby(["dataset", "metric", "profile"]):
        per_spec = {spec: group for spec, group in column.groupby("spec")}
        shared = set.intersection(*(set(g["image_id"]) for g in per_spec.values()))
        for spec, group in per_spec.items():
            chosen = group[group["image_id"].isin(shared)] if images == "shared" else group
            mean, low, high = _cell(chosen["value"].to_numpy(dtype=np.float64))
            rows.append((spec, labels.get(spec, spec), dataset, metric, profile, int(len(group)), len(shared),
                         mean, low, high))
    for spec, dataset, metric, profile, n, mean, low, high in downstream_summary(
            snapshot.task_results, snapshot.task_references, snapshot.task_setups):
        rows.append((spec, labels.get(spec, spec), dataset, metric, profile, n, n, mean, low, high))
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
