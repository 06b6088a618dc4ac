"""Report figures drawn with matplotlib (Agg backend) and returned as base64 PNG data URIs."""

from __future__ import annotations

import base64
import io
import math

import numpy as np
import pandas as pd

from bench.report.summary import StoreSnapshot
from bench.report.tables import LABELS, info_of
from bench.results.store import ANY


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _save(fig) -> str:
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return png_data_uri(buffer.getvalue())


def quality_cost_scatter(summary: pd.DataFrame, labels: dict[str, str], dataset: str, profile: str,
                         device: str) -> str | None:
    """PSNR on ``dataset`` against median ms/image on ``device``; marker area grows with parameters.

    None when fewer than one method has both figures.
    """
    fr = summary[(summary["dataset"] == dataset) & (summary["metric"] == "psnr") & (summary["profile"] == profile)]
    eff = summary[(summary["dataset"] == ANY) & (summary["profile"] == device)]
    points = []
    for row in fr.itertuples():
        ms = eff[(eff["method"] == row.method) & (eff["metric"] == "ms_per_image")]["mean"]
        params = eff[(eff["method"] == row.method) & (eff["metric"] == "params")]["mean"]
        if len(ms) and np.isfinite(row.mean) and ms.iloc[0] > 0:
            points.append((labels.get(row.method, row.method), float(ms.iloc[0]), float(row.mean),
                           float(params.iloc[0]) if len(params) else 0.0))
    if not points:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    largest = max(p[3] for p in points) or 1.0
    for label, ms, psnr, params in points:
        ax.scatter(ms, psnr, s=40 + 900 * math.sqrt(params / largest), alpha=0.6, edgecolors="black", linewidths=0.6)
        ax.annotate(label, (ms, psnr), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_xscale("log")
    ax.margins(0.2)
    ax.set_xlabel(f"median ms/image on {device} (log scale)")
    ax.set_ylabel(f"PSNR (dB), {profile}")
    ax.set_title(f"{dataset}: quality against cost (marker area ~ parameters)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig)


def per_image_boxplot(snapshot: StoreSnapshot, labels: dict[str, str], order: list[str], dataset: str,
                      metric: str, profile: str) -> str | None:
    """Box plot of the per-image values of ``metric`` per method on ``dataset``; None without data."""
    res = snapshot.results
    res = res[(res["dataset"] == dataset) & (res["metric"] == metric) & (res["profile"] == profile)]
    series = [(labels.get(spec, spec), res[res["spec"] == spec]["value"].to_numpy(dtype=float)) for spec in order]
    series = [(label, v[np.isfinite(v)]) for label, v in series if np.isfinite(v).any()]
    if not series:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(series) + 1.5), 3.6))
    ax.boxplot([v for _, v in series], showmeans=True, meanprops={"marker": "D", "markersize": 4})
    ax.set_xticks(range(1, len(series) + 1), [label for label, _ in series], rotation=20, ha="right", fontsize=8)
    unit = info_of(metric).unit
    arrow = "higher is better" if info_of(metric).higher_better else "lower is better"
    ax.set_ylabel(f"{LABELS.get(metric, metric)}{f' ({unit})' if unit else ''}, {arrow}")
    ax.set_title(f"{dataset}: per-image {LABELS.get(metric, metric)}" + (f" ({profile})" if profile != "-" else ""),
                 fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    return _save(fig)
