"""`bench train check-data`: are training photographs disjoint from every evaluation image?"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bench.cli.common import console, friendly_errors
from bench.config import PROJECT_ROOT

DEFAULT_DATA_ROOT = PROJECT_ROOT.parent / "shared" / "data"


@friendly_errors
def check_data(
    folders: list[Path] = typer.Argument(..., help="training folder(s) of clean photographs; source = file-name "
                                                   "prefix before the first '-' (else the folder name)"),
    data_root: Path = typer.Option(DEFAULT_DATA_ROOT, help="folder holding the evaluation sets (rain100l, camvid, "
                                                           "sirr_real147, moss_real48, cityscapes_samples, coco8)"),
    out: Optional[Path] = typer.Option(None, help="write the Markdown report (model-card table) here"),
    json_path: Optional[Path] = typer.Option(None, "--json", help="write every image's result as JSON here"),
    threshold: Optional[float] = typer.Option(None, min=0.0, max=2.0,
                                              help="near-duplicate distance (default: the calibrated one)"),
    no_embedded: bool = typer.Option(False, "--no-embedded", help="skip the embedded suite's source photographs"),
    strict: bool = typer.Option(False, "--strict", help="exit 1 when any training image is flagged"),
) -> None:
    """Exact sha256 matches and near-duplicates (resized, re-encoded, cropped, mirrored copies) between training
    photographs and the evaluation sets; prints a table per source and lists the files to drop."""
    from bench.train.disjointness import DUPLICATE_THRESHOLD, check_disjointness, evaluation_images

    if not data_root.is_dir():
        console.print(f"[yellow]--data-root {data_root}: not found; only the embedded suite is checked[/yellow]")
    evaluation = evaluation_images(data_root, include_embedded=not no_embedded)
    report = check_disjointness(folders, data_root, threshold if threshold is not None else DUPLICATE_THRESHOLD,
                                evaluation=evaluation)
    report.write(out, json_path)
    typer.echo(report.to_markdown())
    if report.flagged:
        console.print(f"[bold red]{len(report.flagged)} training image(s) overlap evaluation data: drop them[/bold red]")
        if strict:
            raise typer.Exit(1)
