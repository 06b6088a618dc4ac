"""Render a report (md, csv, latex, html) from the results store; a report never recomputes a metric."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
import pandas as pd

from bench.report.summary import StoreSnapshot, read_snapshot, summarise
from bench.report.tables import Cell, Table, build_tables
from bench.results.store import ResultsStore

if TYPE_CHECKING:
    from bench.config import Settings
    from bench.report.html import GridOptions

FORMATS = ("md", "csv", "html", "latex")
_TEMPLATES = Path(__file__).parent / "templates"


def environment(**options) -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES), trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True, undefined=jinja2.StrictUndefined, **options)


def md_cell(cell: Cell) -> str:
    text = cell.text + ("†" if cell.dagger else "") + (f"<sup>{cell.footnote}</sup>" if cell.footnote else "")
    if cell.rank == 1:
        return f"**{text}**"
    if cell.rank == 2:
        return f"<u>{text}</u>"
    return text


def provenance(snapshot: StoreSnapshot) -> dict:
    """Latest run's commit, device and package versions, plus every method's weights hash."""
    run = snapshot.runs.iloc[-1].to_dict() if len(snapshot.runs) else {}
    try:
        versions = json.loads(run.get("versions") or "{}")
    except (TypeError, json.JSONDecodeError):
        versions = {}
    weights = [{"spec": r.spec, "label": r.label, "hash": r.weights_hash, "files": _weights_files(r.weights)}
               for r in snapshot.methods.sort_values("spec").itertuples()]
    return {"run_id": run.get("run_id", "?"), "git_commit": run.get("git_commit") or "?",
            "device": run.get("device") or "?", "versions": versions, "weights": weights, "runs": len(snapshot.runs)}


def _weights_files(text: str | None) -> str:
    try:
        files = json.loads(text or "{}")
    except json.JSONDecodeError:
        return ""
    return ", ".join(Path(p).name for p in files.values())


def report_context(snapshot: StoreSnapshot, summary: pd.DataFrame, profile: str) -> dict:
    tables: list[Table] = build_tables(snapshot, summary, profile)
    absent = snapshot.unavailable[snapshot.unavailable["kind"].isin(["dataset", "method", "method-dataset", "metric"])]
    prov = provenance(snapshot)
    return {
        "tables": tables,
        "profile": profile,
        "failures": snapshot.failures,
        "absent": absent,
        "run": {"run_id": prov["run_id"], "git_commit": prov["git_commit"], "device": prov["device"]},
        "provenance": prov,
        "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "methods": snapshot.methods,
    }


def render(store: ResultsStore, fmt: str, profile: str, methods: list[str] | None = None,
           datasets: list[str] | None = None, settings: Settings | None = None,
           grid: GridOptions | None = None) -> str:
    """The report as text in ``fmt`` (md | csv | html | latex).

    settings: used by the HTML picture grid to open the datasets (falls back to the data root the
    latest run recorded); grid: crop size and image choice of that grid.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")
    snapshot = read_snapshot(store, methods, datasets)
    summary = summarise(snapshot)
    if fmt == "csv":
        return summary.to_csv(index=False, float_format="%.6g")
    context = report_context(snapshot, summary, profile)
    if fmt == "md":
        env = environment()
        env.filters["cell"] = md_cell
        return env.get_template("report.md.j2").render(**context)
    if fmt == "latex":
        from bench.report.latex import render_latex

        return render_latex(context)
    from bench.report.html import render_html

    return render_html(context, snapshot, store, settings=settings, grid=grid)
