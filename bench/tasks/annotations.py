"""Reference labels of a downstream dataset: YOLO txt, COCO JSON or label PNGs, checked per image.

A dataset card declares them in a ``[labels]`` section::

    [labels]
    task = "segmentation"      # detection | segmentation
    format = "png"             # png (labels/<stem>.png) | yolo (labels/<stem>.txt) | coco-json (one file)
    path = "labels"            # folder, or the JSON file, relative to the dataset root
    label_space = "camvid-11"  # see bench/tasks/label_spaces.toml

Bad labels (a box outside the image, an unknown class, a missing or mis-sized label file) raise
:class:`LabelError` naming the file and the reason; the runner stores that image as failed.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import BadInputError
from bench.images import pillow_open
from bench.tasks.label_spaces import LabelSpace, label_space

FORMATS = ("png", "yolo", "coco-json")
_BOX_TOLERANCE = 1.0  # px a box may pass the image border (rounding in the source annotations)


class LabelError(Exception):
    """One image's labels cannot be used: the file and the reason."""

    def __init__(self, file: Path | str, reason: str) -> None:
        super().__init__(reason)
        self.file, self.reason = str(file), reason


@dataclass
class BoxLabels:
    """Reference boxes of one image: float Nx4 xyxy in pixels, int class ids, bool crowd flags."""

    boxes: np.ndarray
    classes: np.ndarray
    crowd: np.ndarray

    def to_payload(self) -> dict:
        return {"boxes": np.round(self.boxes, 3).tolist(), "classes": self.classes.tolist(),
                "crowd": self.crowd.astype(int).tolist()}

    @classmethod
    def from_payload(cls, payload: dict) -> BoxLabels:
        boxes = np.asarray(payload["boxes"], dtype=np.float64).reshape(-1, 4)
        return cls(boxes, np.asarray(payload["classes"], dtype=np.int64),
                   np.asarray(payload.get("crowd", [0] * len(boxes)), dtype=bool))

    def scaled(self, sx: float, sy: float) -> BoxLabels:
        return BoxLabels(self.boxes * np.array([sx, sy, sx, sy]), self.classes, self.crowd)


@dataclass(frozen=True)
class LabelSpec:
    """The ``[labels]`` section of a dataset card."""

    task: str
    format: str
    path: str
    label_space: str

    @classmethod
    def from_card(cls, raw: dict, card_path: Path | str) -> LabelSpec:
        missing = [k for k in ("task", "format", "path", "label_space") if k not in raw]
        if missing:
            raise BadInputError(f"dataset card {card_path}: [labels] lacks {', '.join(missing)}; see bench/tasks/annotations.py")
        if raw["task"] not in ("detection", "segmentation"):
            raise BadInputError(f"dataset card {card_path}: [labels] task {raw['task']!r}: choose detection or segmentation")
        if raw["format"] not in FORMATS:
            raise BadInputError(f"dataset card {card_path}: [labels] format {raw['format']!r}: choose one of {', '.join(FORMATS)}")
        label_space(raw["label_space"])  # unknown names fail when the card is read
        return cls(raw["task"], raw["format"], raw["path"], raw["label_space"])

    @property
    def space(self) -> LabelSpace:
        return label_space(self.label_space)


def read_yolo_labels(path: Path, width: int, height: int, space: LabelSpace) -> BoxLabels:
    """``class cx cy w h`` per line, normalised to [0,1]; an empty file means no objects."""
    if not path.is_file():
        raise LabelError(path, "label file missing; add it (an empty file means no objects) or remove the image")
    boxes, classes = [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            cls_id, cx, cy, w, h = int(parts[0]), *map(float, parts[1:5])
            if len(parts) != 5:
                raise ValueError
        except ValueError:
            raise LabelError(path, f"line {number}: expected 'class cx cy w h' (normalised), got {line.strip()!r}") from None
        if not 0 <= cls_id < space.num_classes:
            raise LabelError(path, f"line {number}: class id {cls_id} is not in {space.name} (0-{space.num_classes - 1})")
        box = np.array([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height])
        _check_box(path, f"line {number}", box, width, height)
        boxes.append(box)
        classes.append(cls_id)
    return BoxLabels(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(classes, dtype=np.int64),
                     np.zeros(len(boxes), dtype=bool))


def _check_box(path: Path, where: str, box: np.ndarray, width: int, height: int) -> None:
    x1, y1, x2, y2 = box
    if not (x2 > x1 and y2 > y1):
        raise LabelError(path, f"{where}: empty box {np.round(box, 1).tolist()}; remove it")
    if x1 < -_BOX_TOLERANCE or y1 < -_BOX_TOLERANCE or x2 > width + _BOX_TOLERANCE or y2 > height + _BOX_TOLERANCE:
        raise LabelError(path, f"{where}: box {np.round(box, 1).tolist()} lies outside the {width}x{height} image; "
                               f"fix the label (wrong image or not normalised?)")


@functools.cache
def _coco_index(path: Path, mtime: int) -> tuple[dict, dict, dict]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BadInputError(f"{path}: cannot read COCO annotations ({exc}); fix or rebuild the file") from exc
    categories = {c["id"]: c["name"] for c in data.get("categories", [])}
    images = {Path(i["file_name"]).stem: i for i in data.get("images", [])}
    anns: dict[int, list] = {}
    for ann in data.get("annotations", []):
        anns.setdefault(ann["image_id"], []).append(ann)
    return categories, images, anns


def read_coco_labels(path: Path, image_id: str, width: int, height: int, space: LabelSpace) -> BoxLabels:
    """Boxes of ``image_id`` (file stem) from a COCO-format JSON; categories matched to ``space`` by name."""
    if not path.is_file():
        raise LabelError(path, "COCO annotation file missing; rebuild the dataset with `bench datasets build`")
    categories, images, anns = _coco_index(path, path.stat().st_mtime_ns)
    if image_id not in images:
        raise LabelError(path, f"no entry for image {image_id!r} in 'images'; add it or remove the image")
    entry = images[image_id]
    sx, sy = width / entry.get("width", width), height / entry.get("height", height)
    boxes, classes, crowd = [], [], []
    for ann in anns.get(entry["id"], []):
        name = categories.get(ann["category_id"])
        if name not in space.names:
            raise LabelError(path, f"annotation {ann.get('id')}: category {ann['category_id']} ({name}) is not a "
                                   f"class of {space.name}")
        x, y, w, h = ann["bbox"]
        box = np.array([x * sx, y * sy, (x + w) * sx, (y + h) * sy])
        _check_box(path, f"annotation {ann.get('id')}", box, width, height)
        boxes.append(box)
        classes.append(space.names.index(name))
        crowd.append(bool(ann.get("iscrowd", 0)))
    return BoxLabels(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(classes, dtype=np.int64),
                     np.asarray(crowd, dtype=bool))


def read_label_png(path: Path, width: int, height: int, space: LabelSpace) -> np.ndarray:
    """int64 HxW class ids; values must be class ids or the space's ignore index; size must match."""

    if not path.is_file():
        raise LabelError(path, "label image missing; add it or remove the image")
    try:
        with pillow_open(path) as img:
            if img.mode not in ("L", "P", "I", "I;16"):
                raise LabelError(path, f"label image has mode {img.mode}; expected one channel of class ids (L or P)")
            labels = np.asarray(img).astype(np.int64)
    except LabelError:
        raise
    except Exception as exc:
        raise LabelError(path, f"cannot read label image ({type(exc).__name__}: {exc})") from exc
    if labels.shape != (height, width):
        raise LabelError(path, f"label size {labels.shape[1]}x{labels.shape[0]} differs from the image ({width}x{height}); "
                               f"labels must have the image's size")
    valid = (labels < space.num_classes) | (labels == (space.ignore_index if space.ignore_index is not None else -1))
    if not valid.all():
        bad = sorted(set(np.unique(labels[~valid]).tolist()))[:5]
        raise LabelError(path, f"label value(s) {bad} are neither {space.name} classes (0-{space.num_classes - 1}) "
                               f"nor its ignore index {space.ignore_index}")
    return labels


def read_labels(spec: LabelSpec, root: Path, image_id: str, width: int, height: int) -> BoxLabels | np.ndarray:
    """The reference of one image of a dataset at ``root`` (boxes for detection, a label map for segmentation)."""
    where = root / spec.path
    if spec.format == "yolo":
        return read_yolo_labels(where / f"{image_id}.txt", width, height, spec.space)
    if spec.format == "coco-json":
        return read_coco_labels(where, image_id, width, height, spec.space)
    return read_label_png(where / f"{image_id}.png", width, height, spec.space)
