"""The study's report, computed from the results store only: the paper's Table 2 layout (the ablation), the
same-budget comparison of SAPNet and PReNet, and whether each ablation step moved PSNR in the paper's direction.

Every mean is over the images that all rows of its table share on that dataset (n is printed), so a row
measured on fewer images is never compared with one measured on more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.train.study import AblationStep, StudyConfig, StudyRun, ablation_steps

_COMPONENTS = (("CRA", "use_cra", True), ("UBS", "w_seg", 0.0), ("PCL", "w_pcl", 0.0), ("Dilation", "use_dilation", True),
               ("LR decay", "lr_decay", True), ("LPISL", "w_lpisl", 0.0))


@dataclass(frozen=True)
class Row:
    """One table row: what it is called and which stored results it reads."""

    label: str
    method: str
    variant: str
    weights_hash: str | None
    """None: any stored weights of the variant (compared methods); else exactly the study checkpoint's."""


def _rows_for(runs: list[StudyRun], compare: list[str]) -> list[Row]:
    from bench.methods.registry import create_method, resolve_method_spec
    from bench.methods.weights import weights_hash

    rows = []
    for spec in compare:
        method = create_method(resolve_method_spec(spec))
        rows.append(Row(method.label, method.info.name, method.variant or "default", None))
    for run in runs:
        method, _, variant = run.spec.partition(":")
        digest = weights_hash({run.final_model.name: run.final_model}) if run.final_model.is_file() else "-"
        rows.append(Row(run.label, method, variant, digest))
    return rows


def _means(results: pd.DataFrame, rows: list[Row], datasets: list[str], profile: str
           ) -> tuple[dict[tuple[str, str, str], float], dict[str, int]]:
    """(row label, dataset, metric) -> mean over the images every row has on that dataset; dataset -> n."""
    means: dict[tuple[str, str, str], float] = {}
    counts: dict[str, int] = {}
    for dataset in datasets:
        per_row = {}
        for row in rows:
            sel = results[(results.method == row.method) & (results.variant == row.variant)
                          & (results.dataset == dataset) & (results.profile == profile)
                          & results.metric.isin(["psnr", "ssim"])]
            if row.weights_hash is not None:
                sel = sel[sel.weights_hash == row.weights_hash]
            per_row[row.label] = sel
        present = [set(sel.image_id) for sel in per_row.values() if len(sel)]
        shared = set.intersection(*present) if present else set()
        counts[dataset] = len(shared)
        for label, sel in per_row.items():
            sel = sel[sel.image_id.isin(shared)]
            for metric in ("psnr", "ssim"):
                values = sel[sel.metric == metric].groupby("image_id").value.mean()
                if len(values):
                    means[(label, dataset, metric)] = float(values.mean())
    return means, counts


def _cell(means: dict, label: str, dataset: str) -> str:
    psnr, ssim = means.get((label, dataset, "psnr")), means.get((label, dataset, "ssim"))
    return "–" if psnr is None else f"{psnr:.2f} / {ssim:.4f}"


def _check(step: AblationStep, key: str, off: object) -> bool:
    value = step.options.get(key, True if key == "lr_decay" else None)
    return bool(value) if isinstance(off, bool) else value not in (None, off, 0, 0.0)


@dataclass
class StudyTables:
    ablation: pd.DataFrame
    comparison: pd.DataFrame
    directions: pd.DataFrame
    counts: dict[str, dict[str, int]]
    """part ("ablation", "main") -> dataset -> images behind its means."""
    source: str
    """where the paper's figures come from."""


def study_tables(study: StudyConfig, runs: list[StudyRun], results: pd.DataFrame) -> StudyTables:
    """The three tables as DataFrames (cells "PSNR / SSIM"), and the image counts behind each."""
    source, steps = ablation_steps()
    compare = [s.strip() for s in study.compare.split(",") if s.strip()]
    counts: dict[str, dict[str, int]] = {}

    ablation_runs = [r for r in runs if r.part == "ablation"]
    datasets = [d.strip() for d in study.ablation_datasets.split(",") if d.strip()]
    rows = _rows_for(ablation_runs, [])
    means, counts["ablation"] = _means(results, rows, datasets, study.profile)
    ablation_records = []
    for step, row in zip(steps, rows, strict=False):
        record = {"Model": step.name, "Step": step.label}
        record.update({name: "✓" if _check(step, key, off) else "" for name, key, off in _COMPONENTS})
        record.update({f"{d} PSNR / SSIM": _cell(means, row.label, d) for d in datasets if counts["ablation"][d]})
        record["paper Rain100H PSNR / SSIM"] = f"{step.paper_psnr:.2f} / {step.paper_ssim:.3f}"
        ablation_records.append(record)

    direction_records = []
    for i in range(1, min(len(steps), len(rows))):
        previous, step, prev_row, row = steps[i - 1], steps[i], rows[i - 1], rows[i]
        for dataset in datasets:
            ours_now, ours_before = means.get((row.label, dataset, "psnr")), means.get((prev_row.label, dataset, "psnr"))
            if ours_now is None or ours_before is None:
                continue
            ours, paper = ours_now - ours_before, step.paper_psnr - previous.paper_psnr
            direction_records.append({"Step": f"{previous.name} -> {step.name} ({step.label})", "Dataset": dataset,
                                      "ours ΔPSNR (dB)": round(ours, 2), "paper ΔPSNR (dB)": round(paper, 2),
                                      "same direction": "yes" if math.copysign(1, ours) == math.copysign(1, paper)
                                      and ours != 0 else "no"})

    main_runs = [r for r in runs if r.part == "main"]
    datasets = [d.strip() for d in study.main_datasets.split(",") if d.strip()]
    rows = _rows_for(main_runs, compare)
    means, counts["main"] = _means(results, rows, datasets, study.profile)
    comparison_records = [{"Method": row.label, "Spec": f"{row.method}:{row.variant}".removesuffix(":default"),
                           **{f"{d} PSNR / SSIM": _cell(means, row.label, d) for d in datasets if counts["main"][d]}}
                          for row in rows]
    return StudyTables(pd.DataFrame(ablation_records), pd.DataFrame(comparison_records),
                       pd.DataFrame(direction_records), counts, source)


def _budget_lines(study: StudyConfig, runs: list[StudyRun]) -> list[str]:
    import json

    main, ablation = study.budgets
    lines = [f"- Main budget (SAPNet and PReNet): {main.describe()}; ablation budget (each of M1-M6): "
             f"{ablation.describe()}; seed {study.seed}; training data: "
             f"{study.synth_from or study.data} ({study.rain_preset + ' synthetic rain' if study.synth_from else 'pairs'})."]
    for run in runs:
        sidecar = run.final_model.with_suffix(".json")
        if sidecar.is_file():
            info = json.loads(sidecar.read_text())
            earlier = info.get("total_iterations", info["iterations"]) - info["iterations"]
            lines.append(f"- {run.label}: {info['iterations']} iterations in {info['wall_time_s'] / 60:.1f} min"
                         f"{f' (after {earlier} earlier iterations of its initial weights)' if earlier else ''}"
                         f"{' (stopped by the time limit)' if info.get('stopped_by_time_limit') else ''}; "
                         f"{info['hardware']}")
    return lines


def _markdown(table: pd.DataFrame) -> str:
    if table.empty:
        return "_no results_"
    head = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in record) + " |" for record in table.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def _latex(table: pd.DataFrame, caption: str) -> str:
    if table.empty:
        return f"% {caption}: no results\n"
    text = table.replace({"✓": r"\checkmark", "–": "--"}).to_latex(index=False, escape=True, caption=caption)
    return text.replace(r"\textbackslash checkmark", r"\checkmark")


def write_study_report(study: StudyConfig, runs: list[StudyRun], config: Path) -> dict[str, Path]:
    """study.md, study.csv and study.tex in the study folder, from the results store of ``config``."""
    from bench.cli.common import settings_from
    from bench.results.store import ResultsStore

    settings = settings_from(config)
    with ResultsStore(settings.results_db) as store:
        results = store.results()
    tables = study_tables(study, runs, results)
    source = tables.source
    n_ablation = ", ".join(f"{d} {n}" for d, n in tables.counts["ablation"].items() if n) or "none"
    n_main = ", ".join(f"{d} {n}" for d, n in tables.counts["main"].items() if n) or "none"
    md = [
        "# SAPNet study", "",
        f"PSNR (dB) / SSIM under profile {study.profile}; means over the images every row of a table shares.", "",
        *_budget_lines(study, runs), "",
        "## Ablation (the paper's Table 2 layout)", "",
        f"Images: {n_ablation}. Paper figures: {source}.", "",
        _markdown(tables.ablation), "",
        "### Direction of each step (PSNR change against the step before)", "",
        _markdown(tables.directions), "",
        "## SAPNet and PReNet with the same data and budget", "",
        f"Images: {n_main}.", "",
        _markdown(tables.comparison), "",
    ]
    out = Path(study.out_dir)
    if (out / "disjointness.md").is_file():
        md += ["## Training data against the evaluation sets", "", (out / "disjointness.md").read_text(), ""]
    paths = {"md": out / "study.md", "csv": out / "study.csv", "latex": out / "study.tex"}
    paths["md"].write_text("\n".join(md))
    frames = []
    for name, table in (("ablation", tables.ablation), ("comparison", tables.comparison),
                        ("directions", tables.directions)):
        frames.append(table.assign(table=name))
    pd.concat(frames, ignore_index=True).to_csv(paths["csv"], index=False)
    paths["latex"].write_text(
        "% needs \\usepackage{booktabs} and \\usepackage{amssymb}\n"
        + _latex(tables.ablation, f"Ablation in the layout of the SAPNet paper's Table 2 ({study.profile}; {n_ablation} images)")
        + "\n" + _latex(tables.comparison, f"SAPNet and PReNet trained with the same data and budget ({n_main} images)"))
    return paths
