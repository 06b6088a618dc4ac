"""`bench list methods|datasets|metrics|profiles`: what exists, and whether it can be used here."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from bench.cli.common import friendly_errors, settings_from
from bench.errors import BadInputError, BenchError, UnavailableError

out = Console()


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, show_lines=True)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _methods_table(settings) -> Table:
    from bench.methods.registry import METHODS, method_class
    from bench.methods.weights import resolve_weights

    table = _table("Methods", "method", "kind", "paper", "availability")
    for name in METHODS.names():
        try:
            cls = method_class(name)
        except BadInputError as exc:
            table.add_row(name, "?", "", f"[red]broken: {exc}[/red]")
            continue
        for variant, info in cls.info.variants.items():
            spec = name if variant == cls.info.default_variant else f"{name}:{variant}"
            try:
                method = cls(variant)
                method.data_root = settings.data_root
                resolve_weights(method, settings.weights_dir, allow_download=False)
                reason = method.unavailable_reason()
                status = f"[yellow]{reason}[/yellow]" if reason else "[green]available[/green]"
            except UnavailableError as exc:
                status = f"[yellow]{exc}[/yellow]"
            except BenchError as exc:
                status = f"[red]{exc}[/red]"
            except Exception as exc:  # a plugin that breaks while being listed
                status = f"[red]plugin error: {type(exc).__name__}: {exc}[/red]"
            paper = cls.info.paper + (f" [{info.note}]" if info.note else "")
            table.add_row(spec, cls.info.kind, paper, status)
    return table


def _datasets_table(settings) -> Table:
    from bench.data.cards import availability, load_cards

    table = _table("Datasets", "dataset", "title", "category", "images", "availability")
    for name, card in load_cards(settings.cards_dir).items():
        reason = availability(card, settings)
        status = ("[green]embedded (generated on first use)[/green]" if card.embedded
                  else "[green]available[/green]" if reason is None else f"[yellow]{reason}[/yellow]")
        table.add_row(name, card.title, card.category, str(card.expected_count), status)
    return table


def _metrics_table() -> Table:
    from bench.metrics.registry import METRICS, NO_REFERENCE_METRICS, metric_info, no_reference_metric

    table = _table("Metrics", "metric", "kind", "better", "description", "availability")
    for name in METRICS.names():
        try:
            info = metric_info(name)
        except BenchError as exc:
            table.add_row(name, "?", "", "", f"[red]{exc}[/red]")
            continue
        status = "[green]available[/green]"
        if name in NO_REFERENCE_METRICS:
            try:
                metric = no_reference_metric(name)
                reason = metric.unavailable_reason()
                status = f"[green]{metric.implementation}[/green]" if reason is None else f"[yellow]{reason}[/yellow]"
            except BenchError as exc:
                status = f"[yellow]{exc}[/yellow]"
        table.add_row(name, info.kind, "higher" if info.higher_better else "lower", info.description, status)
    return table


def _task_models_table(settings) -> Table:
    from bench.methods.weights import resolve_weights
    from bench.tasks.registry import TASK_MODELS, task_model_class

    table = _table("Task models (downstream detection and segmentation)", "task model", "task", "labels", "paper",
                   "availability")
    for name in TASK_MODELS.names():
        try:
            cls = task_model_class(name)
        except BadInputError as exc:
            table.add_row(name, "?", "", "", f"[red]broken: {exc}[/red]")
            continue
        variants = list(cls.info.variants) if not cls.info.open_variants else [cls.info.default_variant]
        for variant in variants:
            spec = f"{name}:{variant}"
            try:
                model = cls(variant)
                reason = model.unavailable_reason()
                if reason is None:
                    resolve_weights(model, settings.weights_dir, allow_download=False)
                status = f"[yellow]{reason}[/yellow]" if reason else "[green]available[/green]"
            except BenchError as exc:
                status = f"[yellow]{exc}[/yellow]"
            except Exception as exc:  # a plugin that breaks while being listed
                status = f"[red]plugin error: {type(exc).__name__}: {exc}[/red]"
            if cls.info.open_variants:
                status += f" (any {name}:<weights>; e.g. {spec})"
            table.add_row(spec, cls.info.task, cls.info.label_space, cls.info.paper, status)
    return table


def _profiles_table() -> Table:
    from bench.metrics.profiles import DEFAULT_PROFILE, PROFILES

    table = _table("Full-reference profiles", "profile", "description", "source", "output quantisation")
    for name, p in PROFILES.items():
        table.add_row(name + (" (default)" if name == DEFAULT_PROFILE else ""), p.description, p.source, p.quantisation)
    return table


@friendly_errors
def list_command(
    what: str = typer.Argument(..., help="methods | datasets | metrics | profiles | task-models"),
    config: Optional[Path] = typer.Option(None, help="bench.toml to use"),
    data_root: Optional[Path] = typer.Option(None, help="folder holding the datasets (else BENCH_DATA_ROOT, bench.toml)"),
    weights_dir: Optional[Path] = typer.Option(None, help="weights folder (else BENCH_WEIGHTS_DIR, bench.toml)"),
    plugin: Optional[list[Path]] = typer.Option(None, help="local plugin file(s) to load"),
) -> None:
    """List methods, datasets, metrics, profiles or task models with their availability."""
    settings = settings_from(config, data_root, weights_dir, plugins=plugin)
    builders = {"methods": lambda: _methods_table(settings), "datasets": lambda: _datasets_table(settings),
                "metrics": _metrics_table, "profiles": _profiles_table,
                "task-models": lambda: _task_models_table(settings)}
    if what not in builders:
        raise BadInputError(f"bench list {what}: choose one of {', '.join(builders)}")
    out.print(builders[what]())
