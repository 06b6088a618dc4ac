"""Helpers shared by the commands: settings from flags, plugin loading, error reporting."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from bench.config import PROJECT_ROOT, Settings, load_settings
from bench.errors import BenchError

console = Console(stderr=True)


def set_offline_friendly_defaults() -> None:
    """Keep ultralytics' settings file out of the user's home when not configured."""
    os.environ.setdefault("YOLO_CONFIG_DIR", str(PROJECT_ROOT / ".cache" / "ultralytics"))


def friendly_errors(func: Callable) -> Callable:
    """Print BenchError as one red line (exit 2); Ctrl-C exits 130 saying finished work is kept."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except BenchError as exc:  # the message is text, not markup: "pip install -e '.[ray]'" keeps its brackets
            console.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted: finished images are saved; run the same command again to continue[/yellow]")
            raise typer.Exit(130) from None

    return wrapper


def settings_from(config: Path | None, data_root: Path | None = None, weights_dir: Path | None = None,
                  out: Path | None = None, device: str | None = None, plugins: list[Path] | None = None) -> Settings:
    set_offline_friendly_defaults()
    settings = load_settings(config, data_root=data_root, weights_dir=weights_dir, output_dir=out, device=device)
    load_plugins([*settings.plugin_files, *(plugins or [])], settings)
    return settings


def load_plugins(files: list[Path], settings: Settings) -> None:
    from bench.registry import load_plugin_file

    for path in files:
        load_plugin_file(path)
    for spec, file in settings.checkpoints.items():
        configure_checkpoint(spec, file)
    if settings.precomputed:
        try:
            from methods.precomputed import Precomputed
        except ImportError:  # pragma: no cover - the built-in module is part of the package
            return
        for name, folder in settings.precomputed.items():
            Precomputed.configure(name, folder)


def split_list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def configure_checkpoint(spec: str, file: Path) -> None:
    """Register bench.toml ``[checkpoints."METHOD:NAME"]``: a checkpoint written by `bench train` for METHOD
    (sapnet or prenet), run as the method spec METHOD:NAME."""
    from bench.errors import BadInputError
    from bench.methods.registry import method_class

    method, _, name = spec.partition(":")
    if not (method and name):
        raise BadInputError(f"[checkpoints.{spec}] in bench.toml: name the section by the spec to run it as, "
                            f'e.g. [checkpoints."sapnet:mine"] with file = "runs/train/sapnet/sapnet_final.pt"')
    plugin = method_class(method)
    if not hasattr(plugin, "configure_checkpoint"):
        raise BadInputError(f"[checkpoints.\"{spec}\"] in bench.toml: method {method!r} cannot load a `bench train` "
                            f"checkpoint; use sapnet or prenet")
    plugin.configure_checkpoint(name, file)
