"""Pictures like the SAPNet paper's figures 6 and 7: one image as rainy | each method | clean, with the
task model's boxes (class names) or its segmentation drawn over it.

Everything is read from what the runner stored: boxes from the per-image records, label maps from
``<outputs>/<method>/<variant>/<weights_hash>[@precision]/<dataset>/predictions/<task model>-<reference>/<image>.png``.
A report never runs a model.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.images import pillow_open
from bench.report.grid import Tile, _encode, _read, output_folder
from bench.report.summary import StoreSnapshot
from bench.tasks.dataset_figures import task_profile
from bench.tasks.label_spaces import label_space

BOX_SCORE = 0.25  # boxes drawn at or above this score
TILE_WIDTH = 320  # px


@dataclass
class DownstreamGrid:
    title: str
    image_id: str
    tiles: list[Tile]
    note: str = ""


def _draw_boxes(image: np.ndarray, payload: dict, frame: tuple[int, int], names: tuple[str, ...]) -> np.ndarray:
    from PIL import Image, ImageDraw

    img = Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
    sx, sy = img.width / frame[0], img.height / frame[1]
    draw = ImageDraw.Draw(img)
    for box, score, cls in zip(payload["boxes"], payload["scores"], payload["classes"], strict=True):
        if score < BOX_SCORE:
            continue
        x1, y1, x2, y2 = box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy
        rng = np.random.default_rng(int(cls) + 3)
        colour = tuple(int(v) for v in rng.integers(60, 256, 3))
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=max(2, img.width // 200))
        text = f"{names[cls] if cls < len(names) else cls} {score:.2f}"
        draw.rectangle([x1, max(0, y1 - 11), x1 + 6 * len(text), max(0, y1 - 11) + 11], fill=colour)
        draw.text((x1 + 1, max(0, y1 - 11)), text, fill=(0, 0, 0))
    return np.asarray(img).astype(np.float32) / 255.0


def _overlay(image: np.ndarray, labels: np.ndarray, space) -> np.ndarray:
    from PIL import Image

    if image.shape[:2] != labels.shape:
        img = Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).resize(
            (labels.shape[1], labels.shape[0]), Image.BILINEAR)
        image = np.asarray(img).astype(np.float32) / 255.0
    colours = np.zeros((256, 3), dtype=np.float32)
    for class_id in range(space.num_classes):
        colours[class_id] = np.asarray(space.colour(class_id)) / 255.0
    known = labels < space.num_classes
    out = image.copy()
    out[known] = 0.45 * image[known] + 0.55 * colours[labels[known]]
    return out


def _shrink(image: np.ndarray) -> np.ndarray:
    from PIL import Image

    if image.shape[1] <= TILE_WIDTH:
        return image
    height = int(round(image.shape[0] * TILE_WIDTH / image.shape[1]))
    img = Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).resize((TILE_WIDTH, height),
                                                                                       Image.LANCZOS)
    return np.asarray(img).astype(np.float32) / 255.0


def build_downstream_grids(snapshot: StoreSnapshot, outputs_dir: Path, settings, order: list[str],
                           labels: dict[str, str], max_methods: int = 8) -> tuple[list[DownstreamGrid], list[str]]:
    """One picture row per (dataset, task model, reference) with stored records; notes say what could not be drawn."""
    from bench.data.cards import open_dataset
    from bench.errors import BenchError

    grids, notes = [], []
    tasks = snapshot.task_results
    if tasks.empty:
        return grids, notes
    meth = snapshot.methods.set_index("spec")
    for (dataset, task_model, reference), group in tasks.groupby(["dataset", "task_model", "reference"]):
        try:
            opened = open_dataset(dataset, settings)
        except BenchError as exc:
            notes.append(f"{dataset}: no downstream pictures, the dataset could not be opened ({exc})")
            continue
        samples = {s.image_id: s for s in opened.samples}
        specs = [s for s in order if s in set(group["spec"])]
        specs = [s for s in specs if meth.loc[s, "kind"] != "reference"][:max_methods] + \
                [s for s in specs if meth.loc[s, "kind"] == "reference"]
        common = set.intersection(*(set(group[group["spec"] == s]["image_id"]) for s in specs)) & set(samples)
        if not common:
            continue
        payloads = {(r.spec, r.image_id): json.loads(r.payload) for r in group.itertuples() if r.image_id in common}
        setup = snapshot.task_setups
        setup = setup[(setup["dataset"] == dataset) & (setup["task_model"] == task_model)
                      & (setup["reference"] == reference)]
        space = label_space(setup.iloc[-1]["label_space"]) if len(setup) else None
        is_detection = "boxes" in next(iter(payloads.values()))
        refs = snapshot.task_references
        refs = refs[(refs["dataset"] == dataset) & (refs["task_model"] == task_model) & (refs["reference"] == reference)]
        ref_boxes = {r.image_id: json.loads(r.payload) for r in refs.itertuples()}
        safe = re.sub(r"[^\w.@-]+", "_", task_model)
        folders = {s: output_folder(meth.loc[s], dataset, outputs_dir) for s in specs}
        if is_detection:  # the image with the most reference boxes (ties: first by name)
            image_id = max(sorted(common), key=lambda i: len(ref_boxes.get(i, {}).get("boxes", [])))
        else:  # the middle one of the images whose predictions every row stored
            drawable = sorted(i for i in common if all(
                (folders[s] / "predictions" / f"{safe}-{reference}" / f"{i}.png").is_file() for s in specs))
            image_id = (drawable or sorted(common))[len(drawable or common) // 2]
        sample = samples[image_id]
        size = opened.spec.resize
        tiles = []
        for spec in specs:
            row, folder = meth.loc[spec], folders[spec]
            if spec.startswith("rainy"):
                image = _read(sample.input, size)
            elif row["kind"] == "reference":
                image = _read(sample.target, size)
            elif (folder / f"{image_id}.png").is_file():
                image = _read(folder / f"{image_id}.png")
            else:
                continue
            caption = "Rainy input" if spec.startswith("rainy") else labels.get(spec, spec)
            if is_detection:
                from bench.runner.downstream import image_size

                frame = image_size(sample.target or sample.input) if reference == "labels" else (image.shape[1], image.shape[0])
                names = space.names if space is not None else ()
                tiles.append(Tile(caption, _encode(_shrink(_draw_boxes(image, payloads[(spec, image_id)], frame, names)))))
            else:
                path = folder / "predictions" / f"{safe}-{reference}" / f"{image_id}.png"
                if not path.is_file() or space is None:
                    continue

                with pillow_open(path) as img:
                    label_map = np.asarray(img).astype(np.int64)
                tiles.append(Tile(caption, _encode(_shrink(_overlay(image, label_map, space)))))
        if len(tiles) < 2:
            notes.append(f"{dataset} ({task_profile(task_model, reference)}): no downstream pictures (predictions of "
                         f"this run are not stored as images; rerun with a fresh results folder to draw them)")
            continue
        what = (f"boxes with score >= {BOX_SCORE}" if is_detection else
                f"segmentation in the {space.title if space else '?'} palette")
        grids.append(DownstreamGrid(f"{dataset}, image {image_id}: {task_profile(task_model, reference)}", image_id,
                                    tiles, f"{what}, drawn from the stored predictions"))
    return grids, notes
