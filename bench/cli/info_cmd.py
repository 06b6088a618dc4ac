"""`bench info NAME`: everything about one method, task model, dataset or metric, and how to obtain what is
missing; ``--json`` for scripts."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any, Optional

import typer

from bench.cli.common import friendly_errors, settings_from
from bench.cli.list_cmd import terminal_width

_FIELDS = {"label": "label", "method_kind": "kind", "task": "task", "label_space": "label space", "year": "year",
           "paper": "paper", "description": "description", "code_url": "code", "licence": "licence",
           "preprocessing": "preprocessing", "title": "title", "category": "category", "images": "images",
           "source_url": "source", "notes": "notes", "layouts": "layouts", "folders": "looked for in",
           "metric_kind": "kind", "better": "better", "unit": "unit", "implementation": "implementation",
           "status": "status", "reason": "reason"}


def _wrap(label: str, value: Any, indent: int, width: int) -> list[str]:
    if value in (None, "", [], ()):
        return []
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    head = " " * indent + f"{label}: "
    return textwrap.wrap(text, width, initial_indent=head, subsequent_indent=" " * (len(head)),
                         break_long_words=False, break_on_hyphens=False) or [head.rstrip()]


def format_entry(entry: dict[str, Any], width: int) -> list[str]:
    """An entry as indented, wrapped lines."""
    lines = [f"{entry['name']} ({entry['kind']})"]
    for key, label in _FIELDS.items():
        lines += _wrap(label, entry.get(key), 2, width)
    for step in entry.get("obtain", []):
        lines += _wrap("to obtain", step, 2, width)
    for variant in entry.get("variants", []):
        flags = ", ".join(f for f in ("default" if variant["default"] else "", "shipped" if variant["shipped"] else "") if f)
        lines.append(f"  {variant['spec']}" + (f" ({flags})" if flags else "") + f": {variant['status']}")
        for key in ("description", "trained_on", "note"):
            lines += _wrap(key.replace("_", " "), variant[key], 4, width)
        for f in variant["weights"]:
            lines.append(f"    weights file {f['file']}: {f['state']}")
            lines += _wrap("url", f["url"] or "none (no direct download)", 6, width)
            lines += _wrap("sha256", f["sha256"] or "not recorded", 6, width)
            lines += _wrap("local", f["path"], 6, width)
        for step in variant["obtain"]:
            lines += _wrap("to obtain", step, 4, width)
        if not variant["obtain"] and not variant["status"].startswith("ready"):
            lines += _wrap("reason", variant["reason"], 4, width)
    return lines


@friendly_errors
def info_command(
    name: str = typer.Argument(..., help="a method or task model (NAME or NAME:VARIANT), dataset or metric"),
    as_json: bool = typer.Option(False, "--json", help="print JSON for scripts"),
    config: Optional[Path] = typer.Option(None, help="bench.toml to use"),
    data_root: Optional[Path] = typer.Option(None, help="folder holding the datasets (else BENCH_DATA_ROOT, bench.toml)"),
    weights_dir: Optional[Path] = typer.Option(None, help="weights folder (else BENCH_WEIGHTS_DIR, bench.toml)"),
    plugin: Optional[list[Path]] = typer.Option(None, help="local plugin file(s) to load"),
) -> None:
    """Everything about one entry: paper, variants, weights files (URL, sha256, local state), how to get them."""
    from bench.catalog.info import describe

    entries = describe(name, settings_from(config, data_root, weights_dir, plugins=plugin))
    if as_json:
        typer.echo(json.dumps(entries, indent=2))
        return
    width = terminal_width()
    for i, entry in enumerate(entries):
        if i:
            typer.echo("")
        for line in format_entry(entry, width):
            typer.echo(line)
