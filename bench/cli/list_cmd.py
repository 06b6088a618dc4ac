"""`bench list methods|datasets|metrics|task-models|profiles`: one line per entry that fits the terminal
(at most 100 columns), or ``--json`` for scripts; `bench info NAME` has the details."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Optional

import typer

from bench.cli.common import friendly_errors, settings_from
from bench.errors import BadInputError

MAX_WIDTH = 100
_HEADERS = {"methods": ("METHOD[:VARIANT]", "KIND", "YEAR"), "task-models": ("TASK MODEL[:VARIANT]", "TASK", "YEAR"),
            "datasets": ("DATASET", "CATEGORY", "IMAGES"), "metrics": ("METRIC", "KIND", "BETTER"),
            "profiles": ("PROFILE", "QUANTISATION", "", "SOURCE")}
_FOOTERS = {"methods": "* default variant (NAME alone means NAME:DEFAULT).",
            "task-models": "* default variant; yolo and segformer also take any weights file or hub id as variant."}


def terminal_width() -> int:
    """The terminal's width, at most 100 columns."""
    return min(MAX_WIDTH, shutil.get_terminal_size((MAX_WIDTH, 24)).columns)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def format_lines(rows: list[dict], header: tuple[str, ...], width: int, name_width: int = 28) -> list[str]:
    """Aligned lines ``name kind detail status  hint``, none longer than ``width`` (the hint is clipped first)."""
    names = [r["name"] + (" *" if r.get("extra", {}).get("default") else "") for r in rows]
    w_name = min(max([len(header[0]), *map(len, names)]), name_width)
    w_kind = min(max([len(header[1]), *(len(r["kind"]) for r in rows)]), 16)
    w_detail = min(max([len(header[2]), *(len(r["detail"]) for r in rows)]), 8)
    w_status = min(max([6, *(len(r["status"]) for r in rows)]), 22)
    lead = w_name + w_kind + w_detail + w_status + 6

    def line(name: str, kind: str, detail: str, status: str, hint: str) -> str:
        text = (f"{_clip(name, w_name):<{w_name}}  {_clip(kind, w_kind):<{w_kind}}  {_clip(detail, w_detail):>{w_detail}}"
                f"  {_clip(status, w_status):<{w_status}}")
        room = width - lead - 2
        if len(hint) > room and ":" in hint:  # `bench info effderain` covers every variant of effderain
            hint = "bench info " + hint.rsplit(" ", 1)[1].partition(":")[0]
        return (text + ("  " + _clip(hint, room) if hint and room > 8 else "")).rstrip()

    hint_header = header[3] if len(header) > 3 else "NEXT STEP" if any(r["hint"] for r in rows) else ""
    out = [line(*header[:3], "STATUS", hint_header)]
    out += [line(name, r["kind"], r["detail"], r["status"], r["hint"]) for name, r in zip(names, rows, strict=True)]
    return out


def _profile_rows() -> list[dict]:
    from bench.metrics.profiles import DEFAULT_PROFILE, PROFILES

    return [{"name": name, "kind": p.quantisation, "detail": "", "status": "default" if name == DEFAULT_PROFILE else "",
             "hint": p.source, "reason": "", "extra": {"description": p.description, "source": p.source}}
            for name, p in PROFILES.items()]


@friendly_errors
def list_command(
    what: str = typer.Argument(..., help="methods | datasets | metrics | task-models | profiles"),
    as_json: bool = typer.Option(False, "--json", help="print JSON (every field, full reasons) for scripts"),
    config: Optional[Path] = typer.Option(None, help="bench.toml to use"),
    data_root: Optional[Path] = typer.Option(None, help="folder holding the datasets (else BENCH_DATA_ROOT, bench.toml)"),
    weights_dir: Optional[Path] = typer.Option(None, help="weights folder (else BENCH_WEIGHTS_DIR, bench.toml)"),
    plugin: Optional[list[Path]] = typer.Option(None, help="local plugin file(s) to load"),
) -> None:
    """One line per method variant, dataset, metric, task model or profile, with a short status."""
    from bench.catalog.entries import KINDS

    if what not in (*KINDS, "profiles"):
        raise BadInputError(f"bench list {what}: choose one of {', '.join((*KINDS, 'profiles'))}")
    print_listing(what, settings_from(config, data_root, weights_dir, plugins=plugin), as_json)


def print_listing(what: str, settings, as_json: bool = False) -> None:
    """Print ``bench list WHAT`` (also behind `bench datasets list`)."""
    from bench.catalog.entries import rows_of

    rows = _profile_rows() if what == "profiles" else [r.as_dict() for r in rows_of(what, settings)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for text in format_lines(rows, _HEADERS[what], terminal_width()):
        typer.echo(text)
    if what in _FOOTERS and any(r["extra"].get("default") for r in rows):
        typer.echo(_FOOTERS[what])
    fine = ("ready", "ready (shipped)", "generated on first use", "built on first use", "default", "")
    if any(r["status"] not in fine for r in rows):
        files = "; `bench weights status` lists every weights file" if what in ("methods", "task-models") else ""
        typer.echo(f"`bench info NAME` explains a status and its fix{files}.")
