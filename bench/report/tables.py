"""Paper-style tables (the model every renderer draws): best value bold, second underlined.

A missing cell carries the reason ("weights unavailable", "dataset absent") as a footnote.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from bench.metrics.registry import metric_info
from bench.report.summary import StoreSnapshot
from bench.results.store import ANY


@dataclass
class Cell:
    value: float | None
    text: str
    rank: int | None = None  # 1 best, 2 second in its column
    footnote: int | None = None  # index into Table.footnotes (1-based)


@dataclass
class Column:
    dataset: str
    metric: str
    header: str
    higher_better: bool


@dataclass
class Table:
    kind: str  # full-reference | no-reference | efficiency
    caption: str
    columns: list[Column]
    rows: list[tuple[str, list[Cell]]] = field(default_factory=list)
    footnotes: list[str] = field(default_factory=list)

    def footnote(self, text: str) -> int:
        if text not in self.footnotes:
            self.footnotes.append(text)
        return self.footnotes.index(text) + 1


def _format(value: float, decimals: int) -> str:
    if math.isinf(value):
        return "inf"
    if decimals == 0:
        return f"{value:,.0f}"
    return f"{value:.{decimals}f}"


def _rank_columns(table: Table) -> None:
    for j, column in enumerate(table.columns):
        values = sorted({cells[j].value for _, cells in table.rows if cells[j].value is not None
                         and not math.isnan(cells[j].value)}, reverse=column.higher_better)
        for _, cells in table.rows:
            cell = cells[j]
            if cell.value is None or len(values) < 2:
                continue
            if cell.value == values[0]:
                cell.rank = 1
            elif cell.value == values[1]:
                cell.rank = 2


def _method_order(snapshot: StoreSnapshot, specs: list[str]) -> list[str]:
    """Rainy first, then methods in the order they were first run."""
    order = snapshot.methods.sort_values("created")["spec"].tolist()
    ordered = [s for s in order if s in specs]
    return sorted(ordered, key=lambda s: (0 if s.split(":")[0] == "rainy" else 1, ordered.index(s)))


def _labels(snapshot: StoreSnapshot) -> dict[str, str]:
    labels = {}
    for _, row in snapshot.methods.iterrows():
        variant = row["spec"].partition(":")[2]
        labels[row["spec"]] = row["label"] + (f" ({variant})" if variant else "")
    return labels


def _missing_reason(snapshot: StoreSnapshot, spec: str, dataset: str) -> str:
    name = spec.partition(":")[0]
    fails = snapshot.failures[(snapshot.failures["spec"] == spec) & (snapshot.failures["dataset"] == dataset)]
    if len(fails):
        return f"{spec} on {dataset}: all {len(fails)} image(s) failed (see Failures)"
    unav = snapshot.unavailable
    hit = unav[(unav["method"] == name) & (unav["dataset"] == ANY)]
    if len(hit):
        return f"{spec}: weights unavailable or failed to load: {hit.iloc[0]['reason']}"
    return f"{spec} was not run on {dataset}"


def _build(snapshot: StoreSnapshot, summary: pd.DataFrame, kind: str, caption: str, metrics: list[str],
           profile: str, datasets: list[str]) -> Table | None:
    cells = summary[(summary["metric"].isin(metrics)) & (summary["profile"] == profile)
                    & (summary["dataset"].isin(datasets))]
    if cells.empty:
        return None
    columns = []
    for dataset in datasets:
        for metric in metrics:
            if ((cells["dataset"] == dataset) & (cells["metric"] == metric)).any():
                info = metric_info(metric)
                head = metric.upper() if dataset == ANY else f"{dataset} {metric.upper()}"
                columns.append(Column(dataset, metric, head + (f" ({info.unit})" if info.unit else ""),
                                      info.higher_better))
    table = Table(kind, caption, columns)
    lookup = {(r.method, r.dataset, r.metric): r for r in cells.itertuples()}
    specs = _method_order(snapshot, sorted(set(cells["method"])))
    labels = _labels(snapshot)
    for spec in specs:
        row = []
        for col in columns:
            hit = lookup.get((spec, col.dataset, col.metric))
            if hit is None or hit.n == 0 or math.isnan(hit.mean):
                row.append(Cell(None, "n/a", footnote=table.footnote(_missing_reason(snapshot, spec, col.dataset))))
            else:
                row.append(Cell(hit.mean, _format(hit.mean, metric_info(col.metric).decimals)))
        table.rows.append((labels.get(spec, spec), row))
    _rank_columns(table)
    return table


def build_tables(snapshot: StoreSnapshot, summary: pd.DataFrame, profile: str) -> list[Table]:
    """Full-reference (one profile), no-reference and efficiency tables, those that have data."""
    all_datasets = sorted(set(summary["dataset"]) - {ANY})
    tables = []
    fr = _build(snapshot, summary, "full-reference",
                f"PSNR (dB) / SSIM on synthetic rain, profile {profile}; mean over images; best bold, second underlined.",
                ["psnr", "ssim"], profile, all_datasets)
    if fr:
        tables.append(fr)
    nr_metrics = [m for m in ("unique", "brisque", "niqe", "piqe") if (summary["metric"] == m).any()]
    nr = _build(snapshot, summary, "no-reference",
                "No-reference quality on real rain (UNIQUE higher is better; BRISQUE, NIQE, PIQE lower is better).",
                nr_metrics, "-", all_datasets) if nr_metrics else None
    if nr:
        tables.append(nr)
    eff_profiles = sorted(set(summary[summary["dataset"] == ANY]["profile"]))
    for device in eff_profiles:
        eff = _build(snapshot, summary, "efficiency",
                     f"Efficiency at 481x321 on {device}: parameters, GFLOPs, median ms/image after warm-up.",
                     ["params", "flops", "ms_per_image"], device, [ANY])
        if eff:
            tables.append(eff)
    return tables
