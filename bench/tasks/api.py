"""The task-model plugin API: downstream detectors and segmenters that judge derained images.

A task model never knows which method made an image: the runner hands it one RGB image and stores what
it predicts. Plugins subclass :class:`TaskModel`, set ``info`` (:class:`TaskModelInfo`) and implement
:meth:`TaskModel.load` and :meth:`TaskModel.predict`; weights are declared and resolved exactly like a
deraining method's (``<weights_dir>/<folder or name>/<file>``, sha256-verified, downloaded from the
official URL when allowed).

    class MySegmenter(TaskModel):
        info = TaskModelInfo(name="myseg", task="segmentation", label_space="cityscapes-19", paper="...",
                             year=2030, preprocessing="RGB, ImageNet mean/std, full size",
                             variants={"default": Variant(weights=(WeightsFile("myseg.pth", url=..., sha256=...),))})
        def load(self, device): ...
        def predict(self, image):          # float32 HxWx3 RGB in [0,1]
            return label_map               # int64 HxW class ids of the model's label space
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch

from bench.errors import BadInputError, UnknownNameError
from bench.methods.api import Variant, WeightsFile

TaskKind = Literal["detection", "segmentation"]
TASKS: tuple[TaskKind, ...] = ("detection", "segmentation")

__all__ = ["TASKS", "Detections", "TaskKind", "TaskModel", "TaskModelInfo", "Variant", "WeightsFile"]


@dataclass(frozen=True)
class TaskModelInfo:
    """Metadata shown by ``bench list task-models`` and in the downstream table captions.

    label_space: name of the label space predictions are in (``coco-80``, ``cityscapes-19``, ...; see
    :mod:`bench.tasks.label_spaces`). preprocessing: one line a reader can check against the official code.
    open_variants: the variant is a weights file name chosen by the user (``yolo:yolo11n.pt``), not one of
    ``variants``; :meth:`TaskModel.weights_for_variant` then declares the file.
    """

    name: str
    task: TaskKind
    label_space: str
    paper: str
    year: int | None
    preprocessing: str
    variants: dict[str, Variant] = field(default_factory=lambda: {"default": Variant()})
    default_variant: str = "default"
    description: str = ""
    code_url: str = ""
    licence: str = ""
    display_name: str = ""
    open_variants: bool = False

    @property
    def label(self) -> str:
        return self.display_name or self.name


@dataclass
class Detections:
    """Boxes found in one image, in that image's pixel coordinates.

    boxes: float32 Nx4 (x1, y1, x2, y2) in pixels; scores: float32 N in [0, 1]; classes: int64 N, ids of
    the model's label space (0-based).
    """

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.classes = np.asarray(self.classes, dtype=np.int64).reshape(-1)
        if not (len(self.boxes) == len(self.scores) == len(self.classes)):
            raise ValueError(f"Detections: {len(self.boxes)} boxes, {len(self.scores)} scores and "
                             f"{len(self.classes)} classes; they must have the same length")

    def __len__(self) -> int:
        return len(self.boxes)

    def above(self, threshold: float) -> Detections:
        keep = self.scores >= threshold
        return Detections(self.boxes[keep], self.scores[keep], self.classes[keep])


class TaskModel:
    """Base class of every downstream task model (detector or segmenter).

    ``self.variant`` is the chosen variant and ``self.weights`` maps each needed weights file name to its
    resolved path (filled in by the harness before :meth:`load`).
    """

    info: ClassVar[TaskModelInfo]

    def __init__(self, variant: str | None = None) -> None:
        variant = variant or self.info.default_variant
        if not self.info.open_variants and variant not in self.info.variants:
            import difflib

            close = difflib.get_close_matches(variant, list(self.info.variants), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise UnknownNameError(f"task model {self.info.name}: unknown variant {variant!r}.{hint} "
                                   f"Known variants: {', '.join(sorted(self.info.variants))}.")
        self.variant = variant
        self.weights: dict[str, Path] = {}
        self.device = torch.device("cpu")

    @property
    def spec(self) -> str:
        """The canonical ``name:variant`` (the variant always shown: it names the weights)."""
        return f"{self.info.name}:{self.variant}"

    @property
    def owner(self) -> str:
        """How messages name this model (``task model yolov5:yolov5n.pt``)."""
        return f"task model {self.spec}"

    @property
    def task(self) -> TaskKind:
        return self.info.task

    def weights_for_variant(self, variant: str) -> tuple[WeightsFile, ...]:
        """The files an open variant needs (override when ``info.open_variants``)."""
        return self.info.variants[variant].weights if variant in self.info.variants else ()

    def required_weights(self) -> tuple[WeightsFile, ...]:
        if self.variant in self.info.variants:
            return self.info.variants[self.variant].weights
        return self.weights_for_variant(self.variant)

    def unavailable_reason(self) -> str | None:
        """None when the model can run here, else why not and how to fix it (e.g. an optional package)."""
        return None

    def fingerprint_files(self) -> list[Path]:
        """Files that identify the weights when the model declares no WeightsFile (a config and checkpoint
        named in the spec, a local model folder); their hash keys the stored records. Called after load."""
        return []

    def load(self, device: torch.device) -> None:
        """Build the model on ``device`` and load its weights (``self.weights``)."""
        self.device = device

    def predict(self, image: np.ndarray) -> Detections | np.ndarray:
        """image: float32 HxWx3 RGB in [0,1]. Detection -> :class:`Detections` in the image's pixels;
        segmentation -> int64 HxW class ids of ``info.label_space`` at the image's size."""
        raise NotImplementedError

    def network(self) -> torch.nn.Module | None:
        """The torch module (for parameter counts), None when not a torch model."""
        return None

    def weights_path(self, filename: str) -> Path:
        try:
            return self.weights[filename]
        except KeyError:
            raise BadInputError(f"{self.owner}: weights file {filename!r} was not resolved; "
                                f"declare it in the variant's weights") from None
