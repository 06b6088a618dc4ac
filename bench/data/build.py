"""Build a downstream dataset: pick images by a seeded rule, optionally resize, add synthetic rain, and
write ``input/`` (rainy), ``target/`` (clean), ``labels/`` and ``manifest.json``.

The rule, stated once: candidate files are sorted by name; when ``count`` is smaller than their number,
``numpy.random.default_rng(seed).choice(len, count, replace=False)`` picks the indices, kept in name
order. Image ``i`` (0-based, in that order) gets rain from ``default_rng([seed, i])``, as in
``bench datasets synth``, so a build is bit-identical on every machine.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import BadInputError
from bench.images import pillow_open


@dataclass(frozen=True)
class BuildItem:
    """One image to build: its stem in the output, the clean source image and its label source."""

    stem: str
    image: Path
    label: Path | None = None  # png / yolo: the label file; coco-json: None (annotations passed separately)
    label_lookup: np.ndarray | None = None  # png: uint8 table raw value -> class id (e.g. Cityscapes labelIds)


def pick(items: list[BuildItem], count: int | None, seed: int) -> list[BuildItem]:
    """The seeded selection rule of the module docstring."""
    items = sorted(items, key=lambda it: it.stem)
    if count is None or count >= len(items):
        return items
    chosen = np.random.default_rng(seed).choice(len(items), size=count, replace=False)
    return [items[i] for i in sorted(chosen.tolist())]


def _resize_rgb(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    img = Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
    return np.asarray(img.resize(size, Image.BICUBIC)).astype(np.float64) / 255.0


def build_downstream_set(items: Iterable[BuildItem], out_dir: Path, *, label_format: str, label_space: str,
                         preset: str, seed: int, resize: tuple[int, int] | None = None,
                         coco: dict | None = None, source: str = "", progress: Callable | None = None) -> dict:
    """Write the set into ``out_dir`` (atomically: a temporary folder renamed at the end); returns the manifest.

    label_format: png (label images copied, resized nearest when ``resize``), yolo (normalised txt copied),
    coco-json (the subset of ``coco`` for these images written to labels/annotations.json).
    """
    from PIL import Image

    from bench.data.synth import PRESETS, synthesize_rain
    from bench.images import read_image, write_png8

    if preset not in PRESETS:
        raise BadInputError(f"--preset {preset}: choose one of {', '.join(PRESETS)}")
    items = list(items)
    if not items:
        raise BadInputError(f"no images to build into {out_dir}; check the source folder and labels")
    tmp = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "labels").mkdir(parents=True)
    entries = []
    wanted_ids: dict[str, int] = {}
    iterator = progress(items) if progress else items
    for index, item in enumerate(iterator):
        clean = read_image(item.image).astype(np.float64)
        original = (clean.shape[1], clean.shape[0])
        if resize:
            clean = _resize_rgb(clean, resize)
        clean = np.floor(clean * 255 + 0.5) / 255
        rainy = synthesize_rain(clean, preset, np.random.default_rng([seed, index]))
        write_png8(tmp / "input" / f"{item.stem}.png", rainy)
        write_png8(tmp / "target" / f"{item.stem}.png", clean)
        if label_format == "png":
            with pillow_open(item.label) as lab:
                lab = lab.convert("L") if lab.mode == "P" else lab
                if item.label_lookup is not None:
                    lab = Image.fromarray(item.label_lookup[np.asarray(lab, dtype=np.uint8)])
                if resize:
                    lab = lab.resize(resize, Image.NEAREST)
                lab.save(tmp / "labels" / f"{item.stem}.png")
        elif label_format == "yolo":
            shutil.copyfile(item.label, tmp / "labels" / f"{item.stem}.txt")
        entries.append({"stem": item.stem, "source": str(item.image), "original_size": list(original),
                        "size": [clean.shape[1], clean.shape[0]]})
        wanted_ids[item.stem] = index
    if label_format == "coco-json":
        _write_coco_subset(coco or {}, [e["stem"] for e in entries], tmp / "labels" / "annotations.json")
    manifest = {"source": source, "count": len(entries), "preset": preset, "seed": seed,
                "resize": list(resize) if resize else None, "label_format": label_format, "label_space": label_space,
                "selection": "sorted by name; default_rng(seed).choice without replacement; rain default_rng([seed, i])",
                "images": entries}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, out_dir)
    return manifest


def _write_coco_subset(coco: dict, stems: list[str], path: Path) -> None:
    by_stem = {Path(i["file_name"]).stem: i for i in coco.get("images", [])}
    images = [by_stem[s] for s in stems]
    ids = {i["id"] for i in images}
    subset = {"images": [{**i, "file_name": f"{Path(i['file_name']).stem}.png"} for i in images],
              "annotations": [a for a in coco.get("annotations", []) if a["image_id"] in ids],
              "categories": coco.get("categories", [])}
    path.write_text(json.dumps(subset))


def items_from_folders(images: Path, labels: Path | None, label_format: str) -> list[BuildItem]:
    """Pair ``images/*`` with ``labels/<stem>.png|.txt`` (searched recursively, by stem); an image without a
    label file is skipped for png/yolo."""
    from bench.images import list_images

    if not images.is_dir():
        raise BadInputError(f"--images {images}: not a folder of images")
    files = [p for p in sorted(images.rglob("*")) if p.is_file()] if not list_images(images) else list_images(images)
    files = [p for p in files if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")]
    if label_format == "coco-json":
        return [BuildItem(p.stem, p) for p in files]
    if labels is None or not labels.is_dir():
        raise BadInputError(f"--labels {labels}: not a folder; pass the folder of label files ({label_format})")
    suffix = ".png" if label_format == "png" else ".txt"
    label_files = {p.stem: p for p in labels.rglob(f"*{suffix}")}
    return [BuildItem(p.stem, p, label_files[p.stem]) for p in files if p.stem in label_files]


def ensure_derived(card, settings) -> Path:
    """Folder of a card built from data under the data root (``[derive]``), generated once into the cache."""
    from bench.errors import UnavailableError

    derive = card.derive
    source = settings.data_root / derive["from"]
    images, labels = source / derive.get("images", "."), source / derive.get("labels", "labels")
    key = f"{card.name}-{derive['preset']}-s{derive['seed']}"
    root = settings.cache_dir / "derived" / key
    if (root / "manifest.json").is_file():
        return root
    if not images.is_dir():
        raise UnavailableError(f"{card.name}: built from {images}, which was not found; "
                               f"{card.fetch.get('how_to_get') or 'place the source data there'}, "
                               f"or set BENCH_DATA_ROOT / --data-root to the folder that holds {derive['from']}/")
    items = items_from_folders(images, labels, card.labels.format)
    build_downstream_set(items, root, label_format=card.labels.format, label_space=card.labels.label_space,
                         preset=derive["preset"], seed=int(derive["seed"]), source=str(source))
    return root
