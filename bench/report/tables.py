"""Paper-style tables (the model every renderer draws): best value bold, second underlined.

A missing cell carries the reason ("weights unavailable", "metric unavailable", "not run") as a
numbered footnote; a best value that a paired Wilcoxon test cannot tell from the second carries a
dagger. Reference rows (the rainy input) are shown but not ranked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from bench.metrics.api import MetricInfo
from bench.metrics.registry import metric_info
from bench.report.image_counts import mark_image_counts
from bench.report.summary import StoreSnapshot
from bench.results.store import ANY, FP32, NO_PROFILE
from bench.stats.paired import ALPHA, paired_wilcoxon

NO_REFERENCE = ("unique", "brisque", "niqe", "piqe")
DOWNSTREAM = ("map", "map50", "miou", "mpa")
EFFICIENCY = ("params", "flops", "ms_per_image")
LABELS = {"psnr": "PSNR", "ssim": "SSIM", "unique": "UNIQUE", "brisque": "BRISQUE", "niqe": "NIQE", "piqe": "PIQE",
          "map": "mAP (%)", "map50": "mAP@.5 (%)", "miou": "mIoU (%)", "mpa": "mPA (%)", "params": "Params (M)", "flops": "GFLOPs",
          "ms_per_image": "ms/image", "time_ms": "ms/image (as run)", "peak_memory_mb": "Peak memory (MB)"}
SCALE = {"params": 1e-6, **{m: 100.0 for m in DOWNSTREAM}}  # params in millions, downstream figures in %
DECIMALS = {"params": 3, **{m: 1 for m in DOWNSTREAM}}
DAGGER_NOTE = (f"† best not significantly better than the second (two-sided paired Wilcoxon signed-rank test on "
               f"per-image differences, p ≥ {ALPHA}).")


@dataclass
class Cell:
    value: float | None  # mean over images as stored (unscaled); None when missing
    text: str
    rank: int | None = None  # 1 best, 2 second in its column
    footnote: int | None = None  # index into Table.footnotes (1-based)
    dagger: bool = False  # best, but not significantly better than the second
    n: int = 0  # images the method was measured on
    common_n: int = 0  # images every row of the column shares
    partial: bool = False  # over fewer images than its column's most (--images all): marked, not ranked
    ci: tuple[float, float] | None = None  # 95% bootstrap CI of the mean (unscaled)
    p_value: float | None = None  # paired test against the second (on the best cell)


@dataclass
class Column:
    dataset: str
    metric: str
    profile: str
    group: str  # upper header (dataset), "" for method-level figures
    header: str  # lower header (metric label)
    higher_better: bool


@dataclass
class Row:
    spec: str
    label: str
    reference: bool  # the rainy input: shown, not ranked
    cells: list[Cell]


@dataclass
class Table:
    kind: str  # full-reference | no-reference | downstream | efficiency
    title: str
    caption: str
    columns: list[Column]
    rows: list[Row] = field(default_factory=list)
    footnotes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # unnumbered lines under the table

    def footnote(self, text: str) -> int:
        if text not in self.footnotes:
            self.footnotes.append(text)
        return self.footnotes.index(text) + 1

    def groups(self) -> list[tuple[str, int]]:
        """(upper header, number of columns) runs, left to right."""
        out: list[tuple[str, int]] = []
        for col in self.columns:
            if out and out[-1][0] == col.group:
                out[-1] = (col.group, out[-1][1] + 1)
            else:
                out.append((col.group, 1))
        return out

    @property
    def has_dagger(self) -> bool:
        return any(c.dagger for r in self.rows for c in r.cells)


# Direction and digits of the plugin metrics, known here so that a report never imports their backends.
_KNOWN = {m.name: m for m in (
    MetricInfo("unique", "no-reference", True, "UNIQUE", "", None, 3),
    MetricInfo("brisque", "no-reference", False, "BRISQUE", "", None, 2),
    MetricInfo("niqe", "no-reference", False, "NIQE", "", None, 3),
    MetricInfo("piqe", "no-reference", False, "PIQE", "", None, 2),
    *(MetricInfo(m, "downstream", True, LABELS[m], "", None, 2) for m in DOWNSTREAM),
)}


def info_of(metric: str) -> MetricInfo:
    """Metadata of a stored metric: the plugin metrics above, else the registry, else higher-is-better."""
    if metric in _KNOWN:
        return _KNOWN[metric]
    try:
        return metric_info(metric)
    except Exception:  # noqa: BLE001 - an unregistered or broken metric must not stop a report
        return MetricInfo(metric, "downstream", True, metric, "", None, 3)


def format_value(metric: str, value: float) -> str:
    if math.isinf(value):
        return "inf"
    decimals = DECIMALS.get(metric, info_of(metric).decimals)
    shown = value * SCALE.get(metric, 1.0)
    return f"{shown:,.0f}" if decimals == 0 else f"{shown:.{decimals}f}"


def _rank_column(table: Table, j: int, snapshot: StoreSnapshot) -> None:
    column = table.columns[j]
    ranked = [r for r in table.rows if not r.reference and r.cells[j].value is not None
              and not math.isnan(r.cells[j].value) and not r.cells[j].partial]
    if len(ranked) < 2:
        return
    decimals = DECIMALS.get(column.metric, info_of(column.metric).decimals)

    def shown(cell: Cell) -> float:  # rank what the reader sees: equal printed figures tie
        return round(cell.value * SCALE.get(column.metric, 1.0), decimals)

    values = sorted({shown(r.cells[j]) for r in ranked}, reverse=column.higher_better)
    for r in ranked:
        if shown(r.cells[j]) == values[0]:
            r.cells[j].rank = 1
        elif len(values) > 1 and shown(r.cells[j]) == values[1]:
            r.cells[j].rank = 2
    best = [r for r in ranked if r.cells[j].rank == 1]
    second = best[1:] or [r for r in ranked if r.cells[j].rank == 2]
    if not second:
        return
    a, b = _per_image(snapshot, best[0].spec, column), _per_image(snapshot, second[0].spec, column)
    if len(a) < 2 or len(b) < 2:
        return  # a dataset-level figure (e.g. mAP): nothing to pair
    test = paired_wilcoxon(a, b)
    for r in best:
        r.cells[j].p_value = test.p_value
        r.cells[j].dagger = not test.significant


def _per_image(snapshot: StoreSnapshot, spec: str, column: Column) -> pd.Series:
    res = snapshot.results
    hit = res[(res["spec"] == spec) & (res["dataset"] == column.dataset) & (res["metric"] == column.metric)
              & (res["profile"] == column.profile)]
    return pd.Series(hit["value"].to_numpy(dtype=float), index=hit["image_id"].to_numpy())


def method_order(snapshot: StoreSnapshot, specs: list[str]) -> list[str]:
    """Reference rows first, then methods in the order they were first run."""
    order = snapshot.methods.sort_values("created", kind="stable")["spec"].tolist()  # [bf16] rows after fp32
    ordered = [s for s in order if s in specs] + sorted(s for s in specs if s not in order)
    reference = _reference_specs(snapshot)
    upper = set(snapshot.methods[snapshot.methods["kind"] == "reference"]["spec"])  # GT closes the table
    return sorted(ordered, key=lambda s: (2 if s in upper else 0 if s in reference else 1, ordered.index(s)))


def _reference_specs(snapshot: StoreSnapshot) -> set[str]:
    """Rows shown but not ranked: the rainy input and the clean target (GT) of downstream tables."""
    meth = snapshot.methods
    return (set(meth[meth["kind"].isin(["identity", "reference"])]["spec"])
            | {s for s in meth["spec"] if s.split(":")[0] == "rainy"})


def method_labels(snapshot: StoreSnapshot) -> dict[str, str]:
    """Canonical spec -> display label (``PReNet (rain100h)``)."""
    return dict(zip(snapshot.methods["spec"], snapshot.methods["label"], strict=True))


def _missing_reason(snapshot: StoreSnapshot, spec: str, column: Column) -> str:
    spec = spec.partition("@")[0]  # a reduced-precision row: the method's own reasons
    name = spec.partition(":")[0]
    unav = snapshot.unavailable
    metric_row = unav[unav["dataset"] == f"metric:{column.metric}"]
    if len(metric_row):
        return f"{LABELS.get(column.metric, column.metric)} unavailable: {metric_row.iloc[0]['reason']}"
    fails = snapshot.failures[(snapshot.failures["spec"] == spec) & (snapshot.failures["dataset"] == column.dataset)]
    if len(fails):
        return f"{spec} on {column.dataset}: all {len(fails)} image(s) failed (see Failures)"
    variant = spec.partition(":")[2] or None
    here = unav[(unav["method"] == name) & (unav["dataset"] == column.dataset)]
    if variant is not None:
        here = here[here["variant"] == variant]
    if len(here):
        return str(here.iloc[0]["reason"])
    hit = unav[(unav["method"] == name) & (unav["dataset"] == ANY)]
    if len(hit):
        return f"{spec}: weights unavailable or failed to load: {hit.iloc[0]['reason']}"
    return f"{spec} was not run on {column.dataset}" if column.dataset != ANY else f"{spec}: not measured"


def build_table(snapshot: StoreSnapshot, summary: pd.DataFrame, kind: str, title: str, caption: str,
                columns: list[Column], images: str = "shared") -> Table | None:
    """Rows for every method with a figure in any column; ranks, daggers and missing-cell footnotes; in
    quality tables, image counts (see :mod:`bench.report.image_counts`; ``images`` as in ``summarise``)."""
    keys = {(c.dataset, c.metric, c.profile) for c in columns}
    mask = [(d, m, p) in keys for d, m, p in zip(summary["dataset"], summary["metric"], summary["profile"], strict=True)]
    cells = summary[mask] if len(summary) else summary
    if not columns or cells.empty:
        return None
    table = Table(kind, title, caption, columns)
    if kind == "efficiency" and set(cells["method"]) <= _reference_specs(snapshot):
        return None
    lookup = {(r.method, r.dataset, r.metric, r.profile): r for r in cells.itertuples()}
    labels, reference = method_labels(snapshot), _reference_specs(snapshot)
    specs = sorted(set(cells["method"]) - (reference if kind == "efficiency" else set()))  # no cost for the input
    for spec in method_order(snapshot, specs):
        row = []
        for col in columns:
            hit = lookup.get((spec, col.dataset, col.metric, col.profile))
            if hit is None or hit.n == 0 or math.isnan(hit.mean):
                row.append(Cell(None, "n/a", footnote=table.footnote(_missing_reason(snapshot, spec, col))))
            else:
                row.append(Cell(hit.mean, format_value(col.metric, hit.mean), n=int(hit.n),
                                common_n=int(hit.common_n), ci=(hit.ci_low, hit.ci_high)))
        table.rows.append(Row(spec, labels.get(spec, spec), spec in reference, row))
    if kind in ("full-reference", "no-reference"):
        mark_image_counts(table, images)
    for j in range(len(columns)):
        _rank_column(table, j, snapshot)
    if table.has_dagger:
        table.notes.append(DAGGER_NOTE)
    note = _precision_note(snapshot, table)
    if note:
        table.notes.append(note)
    return table


def _precision_note(snapshot: StoreSnapshot, table: Table) -> str | None:
    """Says which rows ran in reduced precision (``bench run --precision``) and when a table mixes precisions
    (the rainy input and the clean target have no network: they never count)."""
    precision = dict(zip(snapshot.methods["spec"], snapshot.methods["precision"], strict=True))
    used = {precision.get(row.spec, FP32) for row in table.rows if not row.reference}
    reduced = sorted(used - {FP32})
    if not reduced:
        return None
    marks = " and ".join(f"[{p}]" for p in reduced)
    mixed = "; this table mixes precisions" if len(used) > 1 else ""
    return (f"Rows marked {marks} ran their network in reduced precision (bench run --precision){mixed}; only "
            f"fp32 figures are comparable with published ones.")


def _columns(summary: pd.DataFrame, metrics: tuple[str, ...] | list[str], datasets: list[str], profiles: set[str],
             extra_metrics: tuple[str, ...] = ()) -> list[Column]:
    present = set(zip(summary["dataset"], summary["metric"], summary["profile"], strict=True))
    columns = []
    for dataset in datasets:
        for metric in metrics:
            for profile in sorted(profiles):
                if (dataset, metric, profile) in present or metric in extra_metrics:
                    header = LABELS.get(metric, metric) + (f" [{profile}]" if len(profiles) > 1 else "")
                    columns.append(Column(dataset, metric, profile, "" if dataset == ANY else dataset, header,
                                          info_of(metric).higher_better))
    return columns


def _implementation_note(snapshot: StoreSnapshot, metrics: list[str]) -> str | None:
    res = snapshot.results
    parts = []
    for metric in metrics:
        impls = sorted({i for i in res[res["metric"] == metric]["implementation"].dropna() if i})
        if impls:
            parts.append(f"{LABELS.get(metric, metric)}: {'; '.join(impls)}")
    return "Implementations: " + " | ".join(parts) + "." if parts else None


def _size_note(summary: pd.DataFrame, device: str) -> str:
    eff = summary[(summary["dataset"] == ANY) & (summary["profile"] == device)]
    sizes = set()
    for spec in set(eff["method"]):
        h = eff[(eff["method"] == spec) & (eff["metric"] == "input_height")]["mean"]
        w = eff[(eff["method"] == spec) & (eff["metric"] == "input_width")]["mean"]
        if len(h) and len(w):
            sizes.add(f"{int(w.iloc[0])}x{int(h.iloc[0])}")
    return ", ".join(sorted(sizes)) if sizes else "481x321"


def build_tables(snapshot: StoreSnapshot, summary: pd.DataFrame, profile: str, images: str = "shared") -> list[Table]:
    """Full-reference (one profile), no-reference, downstream and efficiency tables, those that have data;
    ``images`` is the image set ``summary`` was computed over (``shared`` | ``all``)."""
    datasets = sorted(set(summary["dataset"]) - {ANY})
    tables: list[Table] = []
    fr_sets = [d for d in datasets if ((summary["dataset"] == d) & (summary["profile"] == profile)
                                        & summary["metric"].isin(["psnr", "ssim"])).any()]
    fr = build_table(snapshot, summary, "full-reference", "Full-reference quality (synthetic rain)",
                     f"PSNR (dB) and SSIM under profile {profile}, mean over images; best bold, second underlined; "
                     f"the rainy input is shown for reference and not ranked.",
                     _columns(summary, ["psnr", "ssim"], fr_sets, {profile}), images)
    if fr:
        tables.append(fr)
    unav = snapshot.unavailable
    missing_nr = tuple(m for m in NO_REFERENCE if (unav["dataset"] == f"metric:{m}").any())
    nr_sets = [d for d in datasets if ((summary["dataset"] == d) & summary["metric"].isin(NO_REFERENCE)).any()]
    nr_metrics = [m for m in NO_REFERENCE if (summary["metric"] == m).any() or m in missing_nr]
    nr = build_table(snapshot, summary, "no-reference", "No-reference quality (real rain)",
                     "UNIQUE (higher is better); BRISQUE, NIQE, PIQE (lower is better); mean over images; "
                     "best bold, second underlined.",
                     _columns(summary, nr_metrics, nr_sets, {NO_PROFILE}, extra_metrics=missing_nr), images)
    if nr:
        note = _implementation_note(snapshot, nr_metrics)
        if note:
            nr.notes.append(note)
        tables.append(nr)
    tables += downstream_tables(snapshot, summary, datasets)
    for device in sorted(set(summary[summary["dataset"] == ANY]["profile"])):
        eff = build_table(snapshot, summary, "efficiency", f"Efficiency ({device})",
                          f"Parameters (millions), GFLOPs (torch FlopCounterMode, 2 per multiply-add) and median "
                          f"ms/image after warm-up on {device}, input {_size_note(summary, device)} (WxH); "
                          f"lower is better.",
                          _columns(summary, EFFICIENCY, [ANY], {device}))
        if eff:
            tables.append(eff)
    return tables


TASK_METRICS = {"detection": ("map", "map50"), "segmentation": ("miou", "mpa")}


def downstream_tables(snapshot: StoreSnapshot, summary: pd.DataFrame, datasets: list[str]) -> list[Table]:
    """One Table-5-style table per (dataset, task model, reference): Rainy, each method, GT (not ranked)."""
    tables = []
    setups = snapshot.task_setups
    for dataset in datasets:
        here = summary[(summary["dataset"] == dataset) & summary["metric"].isin(DOWNSTREAM)]
        for profile in sorted(set(here["profile"])):
            metrics = [m for m in DOWNSTREAM if ((here["profile"] == profile) & (here["metric"] == m)).any()]
            task = "detection" if metrics[0] in TASK_METRICS["detection"] else "segmentation"
            spec, _, pseudo = profile.partition("+")
            setup = setups[(setups["dataset"] == dataset) & (setups["spec"] == spec)
                           & (setups["reference"] == ("pseudo" if pseudo else "labels"))]
            setup = setup.iloc[-1] if len(setup) else None
            n = int(here[here["profile"] == profile]["n"].max())
            columns = [Column(dataset, m, profile, dataset, LABELS[m], True) for m in metrics]
            table = build_table(snapshot, summary, "downstream", f"{task.capitalize()} on {dataset} ({spec})",
                                _downstream_caption(task, spec, setup, bool(pseudo), n), columns)
            if table:
                tables.append(table)
    return tables


def _downstream_caption(task: str, spec: str, setup, pseudo: bool, n: int) -> str:
    label_space = setup["label_space"] if setup is not None else "?"
    model = f"{setup['label']} ({setup['paper']})" if setup is not None and setup["paper"] else spec
    if task == "detection":
        what = "COCO box mAP@[.5:.95] and mAP@.5 (faster-coco-eval, up to 100 detections per image)"
    else:
        what = "mIoU and mPA (mean per-class pixel accuracy) from the dataset-level confusion matrix, void ignored"
    parts = [f"{what}, in %, over the {n} images every row shares; task model {spec}: {model}; labels {label_space}"]
    if setup is not None and setup["mapping"]:
        parts.append(f"predictions mapped {setup['mapping']}")
    if pseudo:
        parts.append("reference: the task model's own predictions on the clean targets (pseudo-labels, no human "
                     "labels), so GT is near 100 by construction")
    parts.append("Rainy (the input) and GT (the clean target) are shown, not ranked; best bold, second underlined")
    return "; ".join(parts) + "."
