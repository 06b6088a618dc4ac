"""`bench datasets list|verify|fetch|synth`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.progress import track

from bench.cli.common import console, friendly_errors, settings_from
from bench.cli.list_cmd import _datasets_table, out
from bench.errors import BadInputError

datasets_app = typer.Typer(help="Dataset cards: list, verify a local copy, fetch, synthesize rain.",
                           no_args_is_help=True)


@datasets_app.command("list")
@friendly_errors
def list_datasets(config: Optional[Path] = typer.Option(None), data_root: Optional[Path] = typer.Option(None)) -> None:
    """Every dataset card with its availability."""
    out.print(_datasets_table(settings_from(config, data_root)))


@datasets_app.command("verify")
@friendly_errors
def verify(name: str, config: Optional[Path] = typer.Option(None), data_root: Optional[Path] = typer.Option(None)) -> None:
    """Check a local copy: missing partners, unreadable files, size mismatches, count vs expected."""
    from bench.data.cards import open_dataset
    from bench.images import read_image

    settings = settings_from(config, data_root)
    dataset = open_dataset(name, settings)
    problems = list(dataset.match.problems)
    for sample in track(dataset.samples, description=f"verifying {dataset.name}", console=console):
        shapes = {}
        for role, path in (("input", sample.input), ("target", sample.target)):
            if path is None:
                continue
            try:
                shapes[role] = read_image(path).shape
            except BadInputError as exc:
                problems.append(str(exc))
        if dataset.card.paired and sample.target is None:
            problems.append(f"{sample.input}: missing target (expected {sample.missing_target})")
        if len(shapes) == 2 and shapes["input"] != shapes["target"]:
            problems.append(f"{sample.input}: size {shapes['input'][1]}x{shapes['input'][0]} differs from target "
                            f"{sample.target} ({shapes['target'][1]}x{shapes['target'][0]})")
    count = len(dataset.samples)
    if count != dataset.card.expected_count:
        problems.append(f"{dataset.name}: {count} images found under {dataset.root}, the card expects "
                        f"{dataset.card.expected_count}")
    console.print(f"{dataset.name}: layout {dataset.match.layout}, {count} image(s) under {dataset.root}")
    for problem in problems:
        console.print(f"[yellow]problem:[/yellow] {problem}", highlight=False)
    if problems:
        raise typer.Exit(1)
    console.print("[green]ok[/green]")


@datasets_app.command("fetch")
@friendly_errors
def fetch(name: str, config: Optional[Path] = typer.Option(None), data_root: Optional[Path] = typer.Option(None)) -> None:
    """Download a dataset that has a direct official download (checksum verified when published)."""
    from bench.data.cards import get_card
    from bench.data.fetch import fetch_dataset

    settings = settings_from(config, data_root)
    target = fetch_dataset(get_card(name, settings), settings)
    console.print(f"{name}: unpacked to {target}; check it with `bench datasets verify {name}`")


@datasets_app.command("synth")
@friendly_errors
def synth(
    source: Path = typer.Option(..., "--from", help="folder of clean images"),
    preset: str = typer.Option("light", help="light | heavy"),
    seed: int = typer.Option(0, help="random seed (image i uses the seed sequence [seed, i])"),
    out_dir: Path = typer.Option(..., "--out", help="output folder; input/ and target/ are written inside"),
) -> None:
    """Add synthetic rain to a folder of clean images (input/ = rainy, target/ = clean, equal stems)."""
    from bench.data.synth import PRESETS, synthesize_rain
    from bench.images import list_images, read_image, write_png8

    if preset not in PRESETS:
        raise BadInputError(f"--preset {preset}: choose one of {', '.join(PRESETS)}")
    if not source.is_dir():
        raise BadInputError(f"--from {source}: not a folder of images")
    files = list_images(source)
    if not files:
        raise BadInputError(f"--from {source}: no images found (expected .png/.jpg files)")
    for index, path in enumerate(track(files, description=f"synthesizing {preset} rain", console=console)):
        clean = read_image(path)
        clean = np.floor(clean.astype(np.float64) * 255 + 0.5) / 255
        rainy = synthesize_rain(clean, preset, np.random.default_rng([seed, index]))
        write_png8(out_dir / "input" / f"{path.stem}.png", rainy)
        write_png8(out_dir / "target" / f"{path.stem}.png", clean)
    console.print(f"{len(files)} pair(s) written to {out_dir}")
