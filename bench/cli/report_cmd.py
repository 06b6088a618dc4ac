"""`bench report`: tables from the results store (never recomputes a metric)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bench.cli.common import console, friendly_errors, settings_from, split_list
from bench.errors import BadInputError

_EXTENSIONS = {"md": "md", "csv": "csv", "html": "html", "latex": "tex"}


@friendly_errors
def report_command(
    format: str = typer.Option("md", "--format", "-f", help="md | csv | html | latex"),
    results: Optional[Path] = typer.Option(None, help="folder of the runs (the --out of bench run)"),
    out: Optional[Path] = typer.Option(None, help="output file, or - for standard output"),
    profile: Optional[str] = typer.Option(None, help="full-reference profile of the tables"),
    methods: Optional[str] = typer.Option(None, help="only these method specs (comma list; prenet = prenet:rain100h)"),
    datasets: Optional[str] = typer.Option(None, help="only these datasets (comma list)"),
    images: str = typer.Option("shared", help="shared: every row of a column on the images all its rows share | "
                                                "all: each cell over its own images (cells over fewer are marked, not ranked)"),
    standalone: bool = typer.Option(False, "--standalone", help="latex: a whole compilable document instead of "
                                                                 "paste-ready table fragments"),
    published: bool = typer.Option(False, "--published", help="only the reproduction check: measured cells beside "
                                                              "the published figures (bench/report/published.toml)"),
    config: Optional[Path] = typer.Option(None, help="bench.toml to use"),
) -> None:
    """Render the stored results as Markdown, CSV, HTML or LaTeX."""
    from bench.metrics.profiles import get_profile
    from bench.report.render import FORMATS, ReportOptions, render
    from bench.report.summary import IMAGE_SETS
    from bench.results.store import ResultsStore

    if format not in FORMATS:
        raise BadInputError(f"--format {format}: choose one of {', '.join(FORMATS)}")
    if images not in IMAGE_SETS:
        raise BadInputError(f"--images {images}: choose one of {', '.join(IMAGE_SETS)}")
    settings = settings_from(config, out=results)
    if not settings.results_db.is_file():
        raise BadInputError(f"no results at {settings.results_db}; run `bench run` first or pass --results DIR")
    profile_name = get_profile(profile or settings.profile.split(",")[0]).name if (profile or settings.profile) != "all" \
        else "matlab-y"
    options = ReportOptions(images=images, standalone=standalone, published_only=published)
    with ResultsStore(settings.results_db) as store:
        text = render(store, format, profile_name, split_list(methods) or None, split_list(datasets) or None,
                      settings=settings, options=options)
    if out is not None and str(out) == "-":
        typer.echo(text, nl=False)
        return
    name = "reproduction" if published else "report"
    target = out or settings.output_dir / f"{name}.{_EXTENSIONS[format]}"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    console.print(f"report written to {target}")
