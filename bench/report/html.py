"""Self-contained HTML report: tables, picture grids, quality-versus-cost scatter, per-image
distributions and a provenance footer, with the CSS inline and every image embedded as base64 PNG."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from markupsafe import Markup, escape

from bench.report.downstream_pictures import build_downstream_grids
from bench.report.figures import per_image_boxplot, quality_cost_scatter
from bench.report.grid import Grid, GridOptions, build_grid, data_settings
from bench.report.summary import StoreSnapshot, summarise
from bench.report.tables import NO_REFERENCE, Cell, Table, method_labels, method_order
from bench.results.store import ANY, NO_PROFILE, ResultsStore

if TYPE_CHECKING:
    from bench.config import Settings

__all__ = ["GridOptions", "render_html"]

_CSS = Path(__file__).parent / "templates" / "report.css"


def html_cell(cell: Cell, column_metric: str = "") -> Markup:
    """A <td> with the rank class, dagger, footnote mark and a tooltip holding n, the CI and the p-value."""
    from bench.report.tables import format_value

    classes = {1: "best", 2: "second"}.get(cell.rank or 0, "")
    tip = []
    if cell.n:
        tip.append(f"n = {cell.n} measured" + (f", {cell.common_n} shared by the column" if cell.common_n else ""))
    if cell.ci is not None and column_metric:
        tip.append(f"95% CI [{format_value(column_metric, cell.ci[0])}, {format_value(column_metric, cell.ci[1])}]")
    if cell.p_value is not None:
        tip.append(f"Wilcoxon p = {cell.p_value:.3g} against the second")
    body = escape(cell.text)
    if cell.dagger:
        body += Markup("&dagger;")
    if cell.footnote:
        body += Markup(f'<sup class="fn">{cell.footnote}</sup>')
    title = Markup(f' title="{escape("; ".join(tip))}"') if tip else ""
    cls = Markup(f' class="{classes}"') if classes else ""
    return Markup(f"<td{cls}{title}>") + body + Markup("</td>")


def _figures(snapshot: StoreSnapshot, tables: list[Table], profile: str) -> tuple[list[str], list[str]]:
    summary = summarise(snapshot)
    labels = method_labels(snapshot)
    order = method_order(snapshot, sorted(set(snapshot.results["spec"])))
    fr_sets = [c.dataset for t in tables if t.kind == "full-reference" for c in t.columns if c.metric == "psnr"]
    devices = sorted(set(summary[summary["dataset"] == ANY]["profile"]))
    reference = {row.spec for t in tables for row in t.rows if row.reference}
    costed = summary[~summary["method"].isin(reference)]
    scatters = [uri for d in dict.fromkeys(fr_sets) for dev in devices[:1]
                if (uri := quality_cost_scatter(costed, labels, d, profile, dev))]
    boxes = [uri for d in dict.fromkeys(fr_sets) if (uri := per_image_boxplot(snapshot, labels, order, d, "psnr", profile))]
    for table in tables:
        if table.kind == "no-reference":
            seen = set()
            for col in table.columns:
                if col.dataset not in seen and col.metric in NO_REFERENCE:
                    uri = per_image_boxplot(snapshot, labels, order, col.dataset, col.metric, NO_PROFILE)
                    if uri:
                        seen.add(col.dataset)
                        boxes.append(uri)
    return scatters, boxes


def _grids(snapshot: StoreSnapshot, store: ResultsStore, tables: list[Table], profile: str,
           settings: Settings | None, options: GridOptions) -> tuple[list[Grid], list[str]]:
    datasets = []
    for table in tables:
        if table.kind in ("full-reference", "no-reference", "downstream"):
            for column in table.columns:
                if column.dataset != ANY and column.dataset not in datasets:
                    datasets.append(column.dataset)
    if not datasets:
        return [], []
    resolved = data_settings(settings, snapshot)
    labels = method_labels(snapshot)
    order = method_order(snapshot, sorted(set(snapshot.results["spec"])))
    outputs_dir = store.path.parent / "outputs"
    grids, notes = [], []
    for dataset in datasets:
        built = build_grid(snapshot, outputs_dir, resolved, dataset, order, labels, profile, options)
        (grids if isinstance(built, Grid) else notes).append(built)
    return grids, notes


def html_code(text: object) -> Markup:
    """Escaped text whose `backticked` parts are shown as <code>."""
    parts = str(text).split("`")
    return Markup("").join(Markup("<code>") + escape(p) + Markup("</code>") if i % 2 else escape(p)
                           for i, p in enumerate(parts))


def render_html(context: dict, snapshot: StoreSnapshot, store: ResultsStore | None, settings: Settings | None = None,
                grid: GridOptions | None = None) -> str:
    """The whole report as one HTML document (no external files, scripts or fonts); without a store (the
    reproduction check alone) there are no pictures."""
    from bench.report.render import environment

    tables: list[Table] = context["tables"]
    scatters, boxes = _figures(snapshot, tables, context["profile"]) if len(snapshot.results) and tables else ([], [])
    grids, grid_notes, ds_grids, ds_notes = [], [], [], []
    if store is not None:
        grids, grid_notes = _grids(snapshot, store, tables, context["profile"], settings, grid or GridOptions())
        ds_grids, ds_notes = build_downstream_grids(
            snapshot, store.path.parent / "outputs", data_settings(settings, snapshot), method_order(
                snapshot, sorted(set(snapshot.task_results["spec"]))) if len(snapshot.task_results) else [],
            method_labels(snapshot))
    env = environment(autoescape=True)
    env.globals["html_cell"] = html_cell
    env.filters["code"] = html_code
    return env.get_template("report.html.j2").render(
        **context, css=Markup(_CSS.read_text()), scatters=scatters, boxes=boxes, grids=grids, grid_notes=grid_notes,
        ds_grids=ds_grids, ds_notes=ds_notes)
