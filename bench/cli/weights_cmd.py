"""`bench weights status|fetch|verify`: every weights file the methods and task models declare."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from bench.cli.common import console, friendly_errors, settings_from
from bench.cli.list_cmd import format_lines, terminal_width
from bench.errors import BadInputError

weights_app = typer.Typer(help="Weights files: status, fetch (download with sha256 check), verify.",
                          no_args_is_help=True)


def _entries(config: Path | None, weights_dir: Path | None, plugin: list[Path] | None):
    from bench.catalog.weights import inventory

    settings = settings_from(config, weights_dir=weights_dir, plugins=plugin)
    return settings, inventory(settings.weights_dir)


def _print(entries, weights_dir: Path, as_json: bool) -> None:
    import json

    rows = [{"name": str(e.path.relative_to(weights_dir)), "kind": "url" if e.has_url else "manual",
             "detail": f"{e.path.stat().st_size / 1e6:.1f}" if e.state != "missing" else "-", "status": e.state,
             "hint": ", ".join(e.specs), "reason": "" if e.state == "present" else e.instructions(),
             "extra": {"path": str(e.path), "url": e.file.url, "sha256": e.file.sha256, "owner": e.owner}}
            for e in entries]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for line in format_lines(rows, ("FILE (under the weights folder)", "SOURCE", "MB", "USED BY"), terminal_width(),
                             name_width=40):
        typer.echo(line)


@weights_app.command("status")
@friendly_errors
def status(as_json: bool = typer.Option(False, "--json", help="print JSON for scripts"),
           config: Optional[Path] = typer.Option(None, help="bench.toml to use"),
           weights_dir: Optional[Path] = typer.Option(None, help="weights folder (else BENCH_WEIGHTS_DIR, bench.toml)"),
           plugin: Optional[list[Path]] = typer.Option(None, help="local plugin file(s) to load")) -> None:
    """Every weights file: present, missing or checksum mismatch (SOURCE url: `bench weights fetch` can get it)."""
    settings, entries = _entries(config, weights_dir, plugin)
    if not as_json:
        typer.echo(f"weights folder: {settings.weights_dir}")
    _print(entries, settings.weights_dir, as_json)
    if not as_json:
        counts = {s: sum(e.state == s for e in entries) for s in ("present", "missing", "checksum mismatch")}
        typer.echo(f"{len(entries)} files: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + ".")
        typer.echo("`bench weights fetch NAME|all` downloads files with a URL; `bench info NAME` explains the rest.")


@weights_app.command("fetch")
@friendly_errors
def fetch(name: str = typer.Argument(..., help="all | a method or task model (NAME or NAME:VARIANT) | a file name"),
          config: Optional[Path] = typer.Option(None, help="bench.toml to use"),
          weights_dir: Optional[Path] = typer.Option(None, help="weights folder (else BENCH_WEIGHTS_DIR, bench.toml)"),
          plugin: Optional[list[Path]] = typer.Option(None, help="local plugin file(s) to load"),
          timeout: float = typer.Option(20.0, help="seconds without an answer before a download gives up")) -> None:
    """Download missing weights (progress bar, sha256 check); files without a direct URL get their instructions.
    Exits 1 when a file could not be fetched."""
    from bench.catalog.weights import fetch as fetch_files
    from bench.catalog.weights import select

    _settings, entries = _entries(config, weights_dir, plugin)
    chosen = select(entries, name)
    if not chosen:
        raise BadInputError(f"bench weights fetch {name}: no weights file belongs to that name; "
                            f"`bench weights status` lists every file and who uses it")
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=console, transient=True) as progress:
        def factory(entry):
            task = progress.add_task(entry.file.filename, total=None)
            return lambda done, total: progress.update(task, completed=done, total=total)

        results = fetch_files(chosen, factory, timeout=timeout)
    for r in results:
        style = {"fetched": "green", "already present": "green", "manual": "yellow", "failed": "red"}[r.outcome]
        message = f" {r.message}" if r.outcome in ("manual", "failed") else ""
        console.print(f"[{style}]{r.outcome}[/{style}] {r.entry.file.filename} ({', '.join(r.entry.specs)}){message}",
                      highlight=False, soft_wrap=True)
    if any(r.outcome == "failed" for r in results):
        raise typer.Exit(1)


@weights_app.command("verify")
@friendly_errors
def verify(config: Optional[Path] = typer.Option(None, help="bench.toml to use"),
           weights_dir: Optional[Path] = typer.Option(None, help="weights folder (else BENCH_WEIGHTS_DIR, bench.toml)"),
           plugin: Optional[list[Path]] = typer.Option(None, help="local plugin file(s) to load")) -> None:
    """Recompute the sha256 of every weights file present; exits 1 on a mismatch."""
    _settings, entries = _entries(config, weights_dir, plugin)
    present = [e for e in entries if e.state != "missing"]
    for e in present:
        verdict = "ok" if e.state == "present" and e.file.sha256 else "no sha256 recorded" if e.state == "present" \
            else f"MISMATCH (expected {e.file.sha256[:12]}…; delete it and `bench weights fetch {e.specs[0]}`)"
        typer.echo(f"{e.path}: {verdict}")
    typer.echo(f"{len(present)} of {len(entries)} declared files present; "
               f"{sum(e.state == 'checksum mismatch' for e in present)} mismatch(es).")
    if any(e.state == "checksum mismatch" for e in present):
        raise typer.Exit(1)
