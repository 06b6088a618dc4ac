"""Visual comparison grid: the same crop of one image for rainy | each method | ground truth.

Method outputs are read from the runner's stored 16-bit PNGs
(``<results>/outputs/<method>/<variant>/<weights_hash>[@precision]/<dataset>/<image_id>.png``); inputs and targets
come from the dataset itself. Nothing is recomputed: the PSNR under each tile is read from the store.
"""

from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bench.report.figures import png_data_uri
from bench.report.summary import StoreSnapshot
from bench.results.store import ResultKey

if TYPE_CHECKING:
    from bench.config import Settings


@dataclass(frozen=True)
class GridOptions:
    """crop: side of the square crop in pixels; image: an image id to show (default: a representative one)."""

    crop: int = 160
    image: str | None = None
    max_methods: int = 12


@dataclass
class Tile:
    caption: str
    uri: str
    figure: str = ""  # e.g. "31.20 dB"


@dataclass
class Grid:
    dataset: str
    image_id: str
    box: tuple[int, int, int, int]  # top, left, height, width in pixels
    tiles: list[Tile]
    note: str = ""


def _encode(image: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(buffer, format="PNG")
    return png_data_uri(buffer.getvalue())


def _read(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    from bench.images import read_image

    image = read_image(path)
    if size is not None and image.shape[:2] != (size[1], size[0]):
        from PIL import Image

        planes = [np.asarray(Image.fromarray(image[..., c].astype(np.float32), mode="F").resize(size, Image.BICUBIC))
                  for c in range(3)]
        image = np.clip(np.stack(planes, axis=-1), 0, 1)
    return image


def _pick_crop(reference: np.ndarray, other: np.ndarray, side: int) -> tuple[int, int, int, int]:
    """The side x side window where the two images differ most (where the rain is), on a coarse grid."""
    h, w = reference.shape[:2]
    side_h, side_w = min(side, h), min(side, w)
    diff = np.abs(reference - other).mean(axis=-1)
    step = max(8, side // 4)
    best, best_box = -1.0, (0, 0, side_h, side_w)
    integral = np.pad(diff.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    for top in range(0, h - side_h + 1, step):
        for left in range(0, w - side_w + 1, step):
            total = (integral[top + side_h, left + side_w] - integral[top, left + side_w]
                     - integral[top + side_h, left] + integral[top, left])
            if total > best:
                best, best_box = total, (top, left, side_h, side_w)
    return best_box


def output_folder(method_row: pd.Series, dataset: str, outputs_dir: Path) -> Path:
    """Where the runner stored the outputs of a snapshot's methods row on ``dataset``."""
    return ResultKey(method_row["method"], method_row["variant"], method_row["weights_hash"], dataset,
                     method_row["precision"]).output_folder(outputs_dir)


def _representative_image(snapshot: StoreSnapshot, dataset: str, ids: list[str]) -> str:
    """The image whose rainy-input PSNR is closest to the median (any profile); else the first image."""
    res = snapshot.results
    rainy = res[(res["dataset"] == dataset) & (res["metric"] == "psnr") & res["spec"].str.startswith("rainy")]
    rainy = rainy[rainy["image_id"].isin(ids)]
    if rainy.empty:
        return ids[0]
    per_image = rainy.groupby("image_id")["value"].mean()
    return str((per_image - per_image.median()).abs().idxmin())


def data_settings(settings: Settings | None, snapshot: StoreSnapshot) -> Settings | None:
    """Settings whose data root is the one the latest run recorded (what produced the results)."""
    from bench.config import load_settings

    base = settings or load_settings(None)
    for run in reversed(list(snapshot.runs.itertuples())):
        try:
            root = json.loads(run.config or "{}").get("data_root")
        except json.JSONDecodeError:
            root = None
        if root and Path(root).is_dir():
            return dataclasses.replace(base, data_root=Path(root))
    return base


def build_grid(snapshot: StoreSnapshot, outputs_dir: Path, settings: Settings, dataset: str, order: list[str],
               labels: dict[str, str], psnr_profile: str, options: GridOptions) -> Grid | str:
    """The grid for ``dataset``, or a sentence saying why it cannot be drawn."""
    from bench.data.cards import open_dataset
    from bench.errors import BenchError

    try:
        opened = open_dataset(dataset, settings)
    except BenchError as exc:
        return f"{dataset}: no picture grid, the dataset could not be opened ({exc})"
    samples = {s.image_id: s for s in opened.samples}
    meth = snapshot.methods.set_index("spec")
    specs = [s for s in order if s in meth.index and not s.startswith("rainy")][: options.max_methods]
    stored = {spec: output_folder(meth.loc[spec], dataset, outputs_dir) for spec in specs}
    ids = sorted(i for i in samples if any((stored[s] / f"{i}.png").is_file() for s in specs))
    if not ids:
        return f"{dataset}: no picture grid, no stored method outputs under {outputs_dir}"
    image_id = options.image if options.image in ids else _representative_image(snapshot, dataset, ids)
    sample = samples[image_id]
    size = opened.spec.resize
    rainy = _read(sample.input, size)
    target = _read(sample.target, size) if sample.target is not None and sample.target.is_file() else None
    outputs = {}
    for spec in specs:
        path = stored[spec] / f"{image_id}.png"
        if path.is_file():
            outputs[spec] = _read(path)
    other = target if target is not None else next(iter(outputs.values()))
    top, left, h, w = _pick_crop(rainy, other, options.crop)

    def crop(image: np.ndarray) -> str:
        return _encode(image[top:top + h, left:left + w])

    res = snapshot.results
    here = res[(res["dataset"] == dataset) & (res["image_id"] == image_id) & (res["metric"] == "psnr")
               & (res["profile"] == psnr_profile)]

    def figure(spec: str) -> str:
        hit = here[here["spec"] == spec]["value"]
        return f"{hit.iloc[0]:.2f} dB" if len(hit) else ""

    rainy_spec = next((s for s in order if s.startswith("rainy")), "")
    tiles = [Tile("Rainy input", crop(rainy), figure(rainy_spec))]
    tiles += [Tile(labels.get(s, s), crop(img), figure(s)) for s, img in outputs.items()]
    if target is not None:
        tiles.append(Tile("Ground truth", crop(target)))
    note = f"PSNR of the whole image under {psnr_profile}" if len(here) else ""
    return Grid(dataset, image_id, (top, left, h, w), tiles, note)
