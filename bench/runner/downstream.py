"""Downstream jobs: run a task model on an image and turn its prediction into a per-image record.

One job is (dataset, task, task model, reference). The reference is the dataset's labels or, when
asked (``--pseudo-labels``), the task model's own prediction on the clean target. Predictions are
brought to the reference's frame (boxes scaled, label maps resized nearest) and mapped to the
reference's label space through the declared mapping; the record is the detections (detection) or
the image's confusion matrix (segmentation). Dataset-level figures are computed from the records later.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.data.cards import Dataset
from bench.data.layouts import Sample
from bench.errors import BadInputError, BenchError, UnavailableError
from bench.images import pillow_open
from bench.results.store import ANY, ResultsStore, TaskRecord
from bench.tasks.annotations import BoxLabels, LabelError, read_labels
from bench.tasks.api import Detections, TaskModel
from bench.tasks.label_spaces import LabelMapping, LabelSpace, label_space, require_mapping
from bench.tasks.registry import DEFAULT_TASK_MODELS, create_task_model
from bench.tasks.segmentation_metrics import confusion_matrix

#: detections at or above this score become pseudo-label boxes (the usual YOLO display threshold)
PSEUDO_BOX_SCORE = 0.25
#: detections kept per image in the store (COCO mAP counts the best 100)
MAX_STORED_DETECTIONS = 300


class TaskFailure(Exception):
    """One image's downstream record could not be made: stage, file, reason (stored as the image's failure)."""

    def __init__(self, stage: str, file: Path | str, reason: str) -> None:
        super().__init__(reason)
        self.stage, self.file, self.reason = stage, str(file), reason


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header."""

    with pillow_open(path) as img:
        return img.size


def _resize_nearest(labels: np.ndarray, width: int, height: int) -> np.ndarray:
    if labels.shape == (height, width):
        return labels
    rows = np.minimum((np.arange(height) + 0.5) * labels.shape[0] / height, labels.shape[0] - 1).astype(np.int64)
    cols = np.minimum((np.arange(width) + 0.5) * labels.shape[1] / width, labels.shape[1] - 1).astype(np.int64)
    return labels[rows[:, None], cols[None, :]]


@dataclass
class LoadedTaskModel:
    model: TaskModel
    model_id: str  # spec@weights hash: the key of its records


class DownstreamJob:
    """Records of one task model against one reference on one dataset."""

    def __init__(self, dataset: Dataset, loaded: LoadedTaskModel, reference: str, store: ResultsStore,
                 references_dir: Path) -> None:
        self.dataset, self.loaded, self.reference, self.store = dataset, loaded, reference, store
        model = loaded.model
        self.task = model.task
        if reference == "labels":
            self.labels = dataset.card.labels
            self.space: LabelSpace = self.labels.space
        else:
            self.labels = None
            self.space = label_space(model.info.label_space)
        self.mapping: LabelMapping = require_mapping(model.info.label_space, self.space.name, model.owner)
        self.safe_id = re.sub(r"[^\w.@-]+", "_", loaded.model_id)
        self.references_dir = references_dir / self.safe_id / dataset.name

    @property
    def key(self) -> tuple[str, str]:
        return self.loaded.model_id, self.reference

    def describe(self) -> dict[str, str]:
        info = self.loaded.model.info
        mapping = "" if self.mapping.source == self.mapping.target else f"{self.mapping.title}: {self.mapping.describe()}"
        return {"task": self.task, "spec": self.loaded.model.spec, "label": info.label,
                "model_label_space": info.label_space, "label_space": self.space.name, "mapping": mapping,
                "paper": info.paper, "preprocessing": info.preprocessing}

    # ----------------------------------------------------------------------------------------------
    def predict(self, image: np.ndarray, file: Path | str) -> Detections | np.ndarray:
        try:
            with torch.inference_mode():
                return self.loaded.model.predict(np.ascontiguousarray(image, dtype=np.float32))
        except BenchError:
            raise
        except Exception as exc:
            raise TaskFailure("task-model", file, f"{self.loaded.model.spec} raised {type(exc).__name__}: {exc}") from exc

    def prediction_path(self, image_folder: Path, image_id: str) -> Path:
        """Where a segmentation prediction of an image stored in ``image_folder`` is kept (for report pictures)."""
        return image_folder / "predictions" / f"{self.safe_id}-{self.reference}" / f"{image_id}.png"

    def record(self, image: np.ndarray, sample: Sample, target: np.ndarray | None,
               image_folder: Path | None = None) -> TaskRecord:
        """The record of ``image`` (float32 HxWx3 RGB in [0,1], the evaluated image at the dataset's size).
        A segmentation prediction (mapped to the reference's classes) is also written under ``image_folder``."""
        frame = self._frame(sample, image)
        # the GT row of a pseudo-labelled set predicts the clean target once: reference and prediction alike
        on_target = self.reference == "pseudo" and image is target
        prediction = self.predict(image, sample.input) if on_target else None
        reference, reference_payload = self._reference(sample, target, frame, prediction)
        if prediction is None:
            prediction = self.predict(image, sample.input)
        if self.task == "detection":
            if not isinstance(prediction, Detections):
                raise TaskFailure("task-model", sample.input, f"{self.loaded.model.spec} returned "
                                  f"{type(prediction).__name__}, expected Detections")
            return TaskRecord(*self.key, self._detection_payload(prediction, image, frame), reference_payload)
        labels = np.asarray(prediction)
        if labels.ndim != 2:
            raise TaskFailure("task-model", sample.input, f"{self.loaded.model.spec} returned shape {labels.shape}, "
                              f"expected an HxW label map")
        mapped = self.mapping.apply(_resize_nearest(labels.astype(np.int64), *frame))
        matrix = confusion_matrix(reference, mapped, self.space.num_classes, self.space.ignore_index)
        if image_folder is not None:
            _write_label_png(self.prediction_path(image_folder, sample.image_id), mapped)
        return TaskRecord(*self.key, {"confusion": matrix.tolist()}, None)

    def _frame(self, sample: Sample, image: np.ndarray) -> tuple[int, int]:
        """(width, height) of the reference: the label files' frame (original images), else the image's."""
        if self.reference == "labels":
            return image_size(sample.target or sample.input)
        return image.shape[1], image.shape[0]

    def _detection_payload(self, det: Detections, image: np.ndarray, frame: tuple[int, int]) -> dict:
        sx, sy = frame[0] / image.shape[1], frame[1] / image.shape[0]
        classes = self.mapping.apply(det.classes)
        keep = classes < self.space.num_classes
        order = np.argsort(-det.scores[keep], kind="stable")[:MAX_STORED_DETECTIONS]
        boxes = (det.boxes[keep] * np.array([sx, sy, sx, sy], dtype=np.float32))[order]
        return {"boxes": np.round(boxes, 2).tolist(), "scores": np.round(det.scores[keep][order], 5).tolist(),
                "classes": classes[keep][order].tolist()}

    # references -----------------------------------------------------------------------------------
    def _reference(self, sample: Sample, target: np.ndarray | None, frame: tuple[int, int],
                   target_prediction: Detections | np.ndarray | None = None):
        if self.reference == "labels":
            try:
                ref = read_labels(self.labels, self.dataset.root, sample.image_id, *frame)
            except LabelError as exc:
                raise TaskFailure("labels", exc.file, exc.reason) from exc
            return (ref, ref.to_payload()) if isinstance(ref, BoxLabels) else (ref, None)
        if target is None:
            raise TaskFailure("pair", sample.missing_target or sample.input,
                              "pseudo-labels need the clean target of this input; add it or remove the input")
        if self.task == "detection":
            stored = self.store.task_reference(self.dataset.name, sample.image_id, *self.key)
            if stored is None:
                det = target_prediction if target_prediction is not None else self.predict(target, sample.target)
                det = det.above(PSEUDO_BOX_SCORE)
                stored = BoxLabels(det.boxes.astype(np.float64), det.classes, np.zeros(len(det), bool)).to_payload()
            return BoxLabels.from_payload(stored), stored
        return self._pseudo_label_map(sample, target, target_prediction), None

    def _pseudo_label_map(self, sample: Sample, target: np.ndarray, prediction: np.ndarray | None) -> np.ndarray:

        path = self.references_dir / f"{sample.image_id}.png"
        if path.is_file():
            with pillow_open(path) as img:
                return np.asarray(img).astype(np.int64)
        labels = np.asarray(prediction if prediction is not None else self.predict(target, sample.target)).astype(np.int64)
        labels = np.where((labels >= 0) & (labels < self.space.num_classes), labels,
                          self.space.ignore_index if self.space.ignore_index is not None else 255)
        _write_label_png(path, labels)
        return labels


def _write_label_png(path: Path, labels: np.ndarray) -> None:
    """uint8 label map, written atomically."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.png")
    Image.fromarray(np.clip(labels, 0, 255).astype(np.uint8)).save(tmp)
    os.replace(tmp, path)


def plan_downstream(datasets: list[Dataset], tasks: list[str] | None, task_model_specs: dict[str, str],
                    pseudo: bool, store: ResultsStore, references_dir: Path, device: torch.device,
                    weights_dir: Path, allow_download: bool, run_id: str,
                    unavailable: list[tuple[str, str]]) -> dict[str, list[DownstreamJob]]:
    """Jobs per dataset name. tasks None: each dataset with labels gets its own task. A dataset without
    labels for a requested task is listed as unavailable unless ``pseudo``; so is a task model that cannot
    load (missing weights, missing optional package)."""
    from bench.methods.weights import resolve_weights, weights_hash

    loaded: dict[str, LoadedTaskModel | None] = {}

    def get_model(task: str) -> LoadedTaskModel | None:
        spec = task_model_specs.get(task) or DEFAULT_TASK_MODELS[task]
        if spec in loaded:
            return loaded[spec]
        try:
            model = create_task_model(spec)
            if model.task != task:
                raise BadInputError(f"{model.owner} is a {model.task} model; choose a {task} model for --tasks {task} "
                                    f"(`bench list task-models`)")
            paths = resolve_weights(model, weights_dir, allow_download)
            reason = model.unavailable_reason()
            if reason is not None:
                raise UnavailableError(reason)
            model.weights = paths
            model.load(device)
            extra = {f.name: f for f in model.fingerprint_files() if f.is_file()}
            loaded[spec] = LoadedTaskModel(model, f"{model.spec}@{weights_hash(paths or extra)}")
            store.clear_unavailable(ANY, "", f"task-model:{spec}")
        except (UnavailableError, BadInputError) as exc:
            unavailable.append((f"task model {spec}", str(exc)))
            store.put_unavailable(ANY, "", f"task-model:{spec}", str(exc), "task-model", run_id)
            loaded[spec] = None
        return loaded[spec]

    plan: dict[str, list[DownstreamJob]] = {}
    for dataset in datasets:
        card = dataset.card
        wanted = tasks if tasks is not None else ([card.labels.task] if card.labels else [])
        jobs = []
        for task in wanted:
            if card.labels and card.labels.task == task:
                reference = "labels"
            elif pseudo and card.paired:
                reference = "pseudo"
            else:
                why = (f"{dataset.name} has no {task} labels; pass --pseudo-labels to score {task} against the task "
                       f"model's own output on the clean targets") if card.paired else \
                      f"{dataset.name} has no clean targets, so no {task} reference (labels or pseudo-labels)"
                unavailable.append((f"{task} on {dataset.name}", why))
                store.put_unavailable(ANY, "", f"{dataset.name}|{task}", why, "task", run_id)
                continue
            model = get_model(task)
            if model is None:
                continue
            try:
                job = DownstreamJob(dataset, model, reference, store, references_dir)
            except BadInputError as exc:
                unavailable.append((f"{task} on {dataset.name}", str(exc)))
                store.put_unavailable(ANY, "", f"{dataset.name}|{task}", str(exc), "task", run_id)
                continue
            store.record_task_setup(dataset.name, model.model_id, reference, **job.describe())
            store.clear_unavailable(ANY, "", f"{dataset.name}|{task}")
            jobs.append(job)
        if jobs:
            plan[dataset.name] = jobs
    return plan
