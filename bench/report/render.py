"""Render a report (md, csv, latex, html) from the results store; a report never recomputes a metric."""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
import pandas as pd

from bench.report.absent import absent_rows
from bench.report.published import Reproduction, reproduction, reproduction_frame
from bench.report.summary import StoreSnapshot, at_precision, read_snapshot, summarise
from bench.report.tables import Cell, Table, build_tables
from bench.results.store import ResultsStore

if TYPE_CHECKING:
    from bench.config import Settings
    from bench.report.html import GridOptions

FORMATS = ("md", "csv", "html", "latex")
_TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class ReportOptions:
    """images: ``shared`` (every row of a column on the images all rows share) | ``all``; standalone: a LaTeX
    document instead of paste-ready fragments; published_only: only the reproduction check."""

    images: str = "shared"
    standalone: bool = False
    published_only: bool = False


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


def md_text(text: object) -> str:
    """Plain text inside a Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "/")


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


def _expected_counts(settings: Settings | None) -> dict[str, int]:
    """Dataset name -> image count of the full set, from the dataset cards."""
    from bench.config import load_settings
    from bench.data.cards import load_cards
    from bench.errors import BenchError

    try:
        cards = load_cards((settings or load_settings()).cards_dir)
    except BenchError:
        return {}
    return {name: card.expected_count for name, card in cards.items()}


def check_reproduction(snapshot: StoreSnapshot, settings: Settings | None = None) -> list[Reproduction]:
    """The reproduction check: published figures beside each method's cells over its own images (fp32 figures
    only: reduced precision is never compared with a paper)."""
    return reproduction(summarise(at_precision(snapshot), images="all"), _expected_counts(settings))


def report_context(snapshot: StoreSnapshot, summary: pd.DataFrame, profile: str, images: str = "shared",
                   settings: Settings | None = None) -> dict:
    tables: list[Table] = build_tables(snapshot, summary, profile, images)
    prov = provenance(snapshot)
    stored = sorted(set(summary[summary["metric"].isin(["psnr", "ssim"])]["profile"]))
    empty = (f"No table under profile {profile}: the store has figures under {', '.join(stored)}; pass --profile NAME."
             if stored else "No results yet: run `bench run` first.")
    return {
        "empty_note": empty,
        "tables": tables,
        "profile": profile,
        "failures": snapshot.failures,
        "absent": absent_rows(snapshot.unavailable),
        "reproduction": check_reproduction(snapshot, settings),
        "run": {"run_id": prov["run_id"], "git_commit": prov["git_commit"], "device": prov["device"]},
        "provenance": prov,
        "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "methods": snapshot.methods,
        "published_only": False,
    }


def render(store: ResultsStore, fmt: str, profile: str, methods: list[str] | None = None,
           datasets: list[str] | None = None, settings: Settings | None = None,
           grid: GridOptions | None = None, options: ReportOptions | None = None) -> str:
    """The report as text in ``fmt`` (md | csv | html | latex).

    settings: used by the HTML picture grid to open the datasets (falls back to the data root the
    latest run recorded) and for the dataset sizes of the reproduction check; grid: crop size and image
    choice of that grid; options: image set, LaTeX document or fragments, reproduction check only.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")
    options = options or ReportOptions()
    snapshot = read_snapshot(store, methods, datasets)
    if options.published_only:
        return _render_published(snapshot, fmt, profile, settings, options)
    summary = summarise(snapshot, images=options.images)
    if fmt == "csv":
        return summary.to_csv(index=False, float_format="%.6g")
    context = report_context(snapshot, summary, profile, options.images, settings)
    if fmt == "md":
        return _markdown(context)
    if fmt == "latex":
        from bench.report.latex import render_latex

        return render_latex(context, standalone=options.standalone)
    from bench.report.html import render_html

    return render_html(context, snapshot, store, settings=settings, grid=grid)


def _markdown(context: dict) -> str:
    env = environment()
    env.filters.update(cell=md_cell, text=md_text)
    return env.get_template("report.md.j2").render(**context)


def _render_published(snapshot: StoreSnapshot, fmt: str, profile: str, settings: Settings | None,
                      options: ReportOptions) -> str:
    """Only the reproduction check (``bench report --published``)."""
    groups = check_reproduction(snapshot, settings)
    if fmt == "csv":
        return reproduction_frame(groups).to_csv(index=False, float_format="%.6g")
    prov = provenance(snapshot)
    context = {"empty_note": "", "tables": [], "profile": profile, "failures": snapshot.failures.iloc[0:0], "absent": [],
               "reproduction": groups, "run": {k: prov[k] for k in ("run_id", "git_commit", "device")},
               "provenance": prov, "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "methods": snapshot.methods,
               "published_only": True}
    if fmt == "md":
        return _markdown(context)
    if fmt == "latex":
        from bench.report.latex import render_latex

        return render_latex(context, standalone=options.standalone)
    from bench.report.html import render_html

    return render_html(context, snapshot, None, settings=settings, grid=None)
