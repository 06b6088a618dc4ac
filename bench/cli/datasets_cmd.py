"""`bench datasets list|verify|fetch|synth`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.progress import track

from bench.cli.common import console, friendly_errors, settings_from
from bench.cli.list_cmd import print_listing
from bench.errors import BadInputError

datasets_app = typer.Typer(help="Dataset cards: list, verify a local copy, fetch, synthesize rain.",
                           no_args_is_help=True)


@datasets_app.command("list")
@friendly_errors
def list_datasets(config: Optional[Path] = typer.Option(None), data_root: Optional[Path] = typer.Option(None)) -> None:
    """Every dataset card with its availability (the same as `bench list datasets`)."""
    print_listing("datasets", settings_from(config, data_root))


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


@datasets_app.command("build")
@friendly_errors
def build(
    name: str = typer.Argument(..., help="coco150 | cityscape150 | a new name for any folder of images plus labels"),
    images: Optional[Path] = typer.Option(None, help="folder of clean images (e.g. COCO val2017)"),
    annotations: Optional[Path] = typer.Option(None, help="COCO JSON (e.g. instances_val2017.json)"),
    labels: Optional[Path] = typer.Option(None, help="folder of label files (<stem>.png or <stem>.txt)"),
    cityscapes: Optional[Path] = typer.Option(None, help="Cityscapes root with leftImg8bit/val and gtFine/val"),
    label_format: Optional[str] = typer.Option(None, help="png | yolo | coco-json (from the card when it has one)"),
    label_space: Optional[str] = typer.Option(None, help="e.g. coco-80, cityscapes-19, camvid-11"),
    count: Optional[int] = typer.Option(None, min=1, help="images to pick (default: the card's count, else all)"),
    seed: int = typer.Option(0, help="seed of the pick and of the rain"),
    preset: str = typer.Option("heavy", help="rain preset: light | heavy"),
    resize: Optional[str] = typer.Option(None, help="WIDTHxHEIGHT to resize images (and labels) to, e.g. 1024x512"),
    out: Optional[Path] = typer.Option(None, help="output folder (default: <data_root>/<name>)"),
    config: Optional[Path] = typer.Option(None),
    data_root: Optional[Path] = typer.Option(None),
) -> None:
    """Build a downstream set: seeded pick of images, optional resize, synthetic rain, labels and a manifest."""
    import json

    from bench.data.build import build_downstream_set, items_from_folders, pick
    from bench.data.cards import load_cards
    from bench.runner.runner import parse_size
    from bench.tasks.label_spaces import label_space as get_space

    settings = settings_from(config, data_root)
    card = load_cards(settings.cards_dir).get(name)
    spec = card.labels if card else None
    fmt = label_format or (spec.format if spec else None)
    space = label_space or (spec.label_space if spec else None)
    if fmt is None or space is None:
        raise BadInputError(f"dataset {name}: no card declares its labels; pass --label-format (png | yolo | coco-json) "
                            f"and --label-space (e.g. coco-80)")
    get_space(space)
    size = parse_size(resize) if resize else None
    coco = None
    if cityscapes is not None:
        items = _cityscapes_items(cityscapes, get_space(space))
    elif fmt == "coco-json":
        if images is None or annotations is None or not annotations.is_file():
            raise BadInputError(f"dataset {name}: pass --images <folder> and --annotations <COCO JSON file>")
        try:
            coco = json.loads(annotations.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise BadInputError(f"--annotations {annotations}: not a readable COCO JSON ({exc})") from exc
        annotated = {a["image_id"] for a in coco.get("annotations", []) if not a.get("iscrowd", 0)}
        stems = {Path(i["file_name"]).stem for i in coco.get("images", []) if i["id"] in annotated}
        items = [it for it in items_from_folders(images, None, fmt) if it.stem in stems]
    else:
        if images is None:
            raise BadInputError(f"dataset {name}: pass --images <folder> and --labels <folder> (or --cityscapes)")
        items = items_from_folders(images, labels, fmt)
    if not items:
        raise BadInputError(f"dataset {name}: no image with labels found; check --images/--labels/--annotations")
    chosen = pick(items, count or (card.expected_count if card else None), seed)
    target = out or settings.data_root / (card.folders[0] if card else name)
    manifest = build_downstream_set(
        chosen, target, label_format=fmt, label_space=space, preset=preset, seed=seed, resize=size, coco=coco,
        source=str(cityscapes or images),
        progress=lambda seq: track(seq, description=f"building {name} ({preset} rain)", console=console))
    if card is None:
        path = spec_path = target / "card.toml"
        path.write_text(
            f'name = "{name}"\ntitle = "{name}"\ncategory = "downstream"\nexpected_count = {manifest["count"]}\n'
            f'folders = ["{name}"]\nlayouts = ["input-target"]\nnotes = "built by bench datasets build (seed {seed}, '
            f'preset {preset})"\n\n[labels]\ntask = "{"detection" if fmt != "png" else "segmentation"}"\n'
            f'format = "{fmt}"\npath = "{"labels/annotations.json" if fmt == "coco-json" else "labels"}"\n'
            f'label_space = "{space}"\n')
        console.print(f"card written to {spec_path}: copy it into your cards folder ([paths] cards_dir) to run it")
    console.print(f"{manifest['count']} image(s) with labels written to {target} (manifest.json records the pick)")


def _cityscapes_items(root: Path, space) -> list:
    """leftImg8bit/val/<city>/<stem>_leftImg8bit.png with gtFine/val/<city>/<stem>_gtFine_labelTrainIds.png
    (or _labelIds.png, converted to train ids)."""
    from bench.data.build import BuildItem

    images = sorted((root / "leftImg8bit" / "val").rglob("*_leftImg8bit.png"))
    if not images:
        raise BadInputError(f"--cityscapes {root}: no leftImg8bit/val/*/*_leftImg8bit.png found; pass the folder "
                            f"that holds leftImg8bit/ and gtFine/")
    items = []
    for path in images:
        stem = path.name.removesuffix("_leftImg8bit.png")
        folder = root / "gtFine" / "val" / path.parent.name
        train_ids, label_ids = folder / f"{stem}_gtFine_labelTrainIds.png", folder / f"{stem}_gtFine_labelIds.png"
        if train_ids.is_file():
            items.append(BuildItem(stem, path, train_ids))
        elif label_ids.is_file():
            items.append(BuildItem(stem, path, label_ids, space.from_label_ids()))
    return items
