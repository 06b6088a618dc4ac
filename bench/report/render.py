"""Render a report (md, csv; html and latex where their renderers exist) from the results store."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import jinja2
import pandas as pd

from bench.report.summary import StoreSnapshot, read_snapshot, summarise
from bench.report.tables import Table, build_tables
from bench.results.store import ResultsStore

FORMATS = ("md", "csv", "html", "latex")
_TEMPLATES = Path(__file__).parent / "templates"


def environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES), trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True, undefined=jinja2.StrictUndefined)


def md_cell(cell) -> str:
    text = cell.text + (f"<sup>{cell.footnote}</sup>" if cell.footnote else "")
    if cell.rank == 1:
        return f"**{text}**"
    if cell.rank == 2:
        return f"<u>{text}</u>"
    return text


def report_context(snapshot: StoreSnapshot, summary: pd.DataFrame, profile: str) -> dict:
    tables: list[Table] = build_tables(snapshot, summary, profile)
    last_run = snapshot.runs.iloc[-1].to_dict() if len(snapshot.runs) else {}
    absent = snapshot.unavailable[snapshot.unavailable["kind"].isin(["dataset", "method", "metric"])]
    return {
        "tables": tables,
        "profile": profile,
        "failures": snapshot.failures,
        "absent": absent,
        "run": last_run,
        "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "methods": snapshot.methods,
    }


def render(store: ResultsStore, fmt: str, profile: str, methods: list[str] | None = None,
           datasets: list[str] | None = None) -> str:
    """The report as text in ``fmt`` (md | csv | html | latex)."""
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
    if fmt == "html":
        from bench.report.html import render_html

        return render_html(context, snapshot, summary, store)
    raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")
