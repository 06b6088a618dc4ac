"""The per-image work of a run: one sample in, its figures, downstream records or failure out.

Reading the input and target (with the dataset's resize), deraining (tiled, checked), writing the 16-bit
output, the full-reference profiles or no-reference metrics, and the downstream records. The same
function runs in the command's process (local executor) or in a worker (Ray); it never writes the
results store: the runner commits what it returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from bench.data.cards import Dataset
from bench.data.layouts import Sample
from bench.errors import BadInputError, BenchError
from bench.images import read_image, read_png16, to_uint16, write_png16
from bench.methods.api import DerainMethod, PrecomputedMethod
from bench.metrics.profiles import compute_full_reference, quantise_output
from bench.results.store import NO_PROFILE, ResultKey, TaskRecord
from bench.runner.downstream import DownstreamJob, TaskFailure
from bench.runner.tiling import tiled_apply

Value = tuple[str, str, float, str]  # (metric, profile, value, implementation)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BadInputError("--device cuda: no CUDA device is visible to torch; use --device cpu or auto")
    return torch.device(name)


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bicubic resize of float HxWx3 in [0,1] to (width, height) = size."""
    from PIL import Image

    channels = [Image.fromarray(image[..., c].astype(np.float32), mode="F").resize(size, Image.BICUBIC)
                for c in range(3)]
    return np.clip(np.stack([np.asarray(c) for c in channels], axis=-1), 0, 1).astype(np.float32)


class ImageFailure(Exception):
    """One image could not be measured: stage, file and reason go to the store."""

    def __init__(self, stage: str, file: Path | str, reason: str) -> None:
        super().__init__(reason)
        self.stage, self.file, self.reason = stage, str(file), reason

    def __reduce__(self):  # travels from a worker to the driver intact
        return ImageFailure, (self.stage, self.file, self.reason)


class MethodBroken(Exception):
    """The method itself cannot run (it failed to load): the whole method is listed as not run."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __reduce__(self):
        return MethodBroken, (self.reason,)


@dataclass
class ImageResult:
    """What one sample gave: figures and downstream records to commit, or the failure to store."""

    values: list[Value] = field(default_factory=list)
    records: list[TaskRecord] = field(default_factory=list)
    failure: ImageFailure | None = None


class ImageWork:
    """The per-image function. ``jobs``: dataset name -> downstream jobs; ``nr_metrics``: the available
    no-reference metrics (called when an unpaired image needs them); outputs go under ``outputs_dir``."""

    def __init__(self, device: torch.device, outputs_dir: Path, jobs: dict[str, list[DownstreamJob]],
                 nr_metrics: Callable[[], list]) -> None:
        self.device, self.outputs_dir, self.jobs, self.nr_metrics = device, outputs_dir, jobs, nr_metrics

    def output_path(self, key: ResultKey, image_id: str) -> Path:
        return self.outputs_dir / key.method / key.variant / key.weights_hash / key.dataset / f"{image_id}.png"

    def written_files(self, key: ResultKey, dataset: Dataset, image_id: str) -> list[Path]:
        """The files measuring this image may have written: its output and segmentation predictions."""
        folder = self.output_path(key, image_id).parent
        return [self.output_path(key, image_id)] + [job.prediction_path(folder, image_id)
                                                    for job in self.jobs.get(dataset.name, []) if job.task == "segmentation"]

    # entry points -----------------------------------------------------------------------------------
    def measure(self, method: DerainMethod, key: ResultKey, dataset: Dataset, sample: Sample, profiles: list[str],
                ensure_loaded: Callable[[], None]) -> ImageResult:
        """A method's output on one sample, measured. Raises MethodBroken when the method cannot load."""
        try:
            values, records = self._measure(method, key, dataset, sample, profiles, ensure_loaded)
        except ImageFailure as exc:
            return ImageResult(failure=exc)
        return ImageResult(values, records)

    def reference(self, key: ResultKey, dataset: Dataset, sample: Sample) -> ImageResult:
        """The GT row of one sample: the task models on its clean target."""
        try:
            if sample.target is None:
                raise ImageFailure("pair", sample.missing_target or sample.input,
                                   "missing target (ground truth) for this input; add it or remove the input")
            target = self._read("target", sample.target, dataset.spec.resize)
            folder = self.output_path(key, sample.image_id).parent
            return ImageResult([], self._task_records(dataset, sample, target, target, folder))
        except ImageFailure as exc:
            return ImageResult(failure=exc)

    # one image ----------------------------------------------------------------------------------------
    def _read(self, stage: str, path: Path, resize: tuple[int, int] | None) -> np.ndarray:
        try:
            image = read_image(path)
        except BadInputError as exc:
            raise ImageFailure(stage, path, str(exc).removeprefix(f"{path}: ")) from exc
        return _resize(image, resize) if resize else image

    def _measure(self, method: DerainMethod, key: ResultKey, dataset: Dataset, sample: Sample,
                 profiles: list[str], ensure_loaded) -> tuple[list[Value], list[TaskRecord]]:
        resize = dataset.spec.resize
        values: list[Value] = []
        target = None
        if dataset.card.paired:
            if sample.target is None:
                raise ImageFailure("pair", sample.missing_target or sample.input,
                                   "missing target (ground truth) for this input; add it or remove the input")
            target = self._read("target", sample.target, resize)
        out_path = self.output_path(key, sample.image_id)
        if out_path.is_file():
            output16 = read_png16(out_path)
        elif isinstance(method, PrecomputedMethod):
            source = method.output_path(dataset.card.name, sample.image_id)
            if source is None:
                raise ImageFailure("method", sample.input, f"{method.spec} has no published output for {sample.image_id}")
            output16 = to_uint16(self._read("method-output", source, resize))
            write_png16(out_path, output16)
        else:
            rainy = self._read("input", sample.input, resize)
            if target is not None and target.shape != rainy.shape:
                raise ImageFailure("pair", sample.target,
                                   f"size {target.shape[1]}x{target.shape[0]} differs from input {sample.input.name} "
                                   f"({rainy.shape[1]}x{rainy.shape[0]}); crop both to the same size")
            output, ms = self._derain(method, rainy, sample, ensure_loaded)
            values.append(("time_ms", NO_PROFILE, ms, ""))
            output16 = to_uint16(output)
            write_png16(out_path, output16)
        if target is not None:
            if target.shape != output16.shape:
                raise ImageFailure("pair", sample.target, f"output size {output16.shape[1]}x{output16.shape[0]} "
                                   f"differs from target {target.shape[1]}x{target.shape[0]}")
            for profile in profiles:
                figures = compute_full_reference(output16, target, profile)
                values += [(metric, profile, value, "bench") for metric, value in figures.items()]
        else:
            image8 = quantise_output(output16, "round").astype(np.uint8)
            for metric in self.nr_metrics():
                try:
                    values.append((metric.info.name, NO_PROFILE, float(metric.score(image8)), metric.implementation))
                except Exception as exc:  # a metric failing on one image must not stop the run
                    raise ImageFailure("metric", sample.input, f"{metric.info.name}: {type(exc).__name__}: {exc}") from exc
        output = (output16.astype(np.float32) / 65535.0) if dataset.name in self.jobs else None
        return values, self._task_records(dataset, sample, output, target, out_path.parent)

    def _task_records(self, dataset: Dataset, sample: Sample, image: np.ndarray | None,
                      target: np.ndarray | None, image_folder: Path) -> list[TaskRecord]:
        """Downstream records of one evaluated image (rainy input, a method's output or the clean target)."""
        records = []
        for job in self.jobs.get(dataset.name, []):
            try:
                records.append(job.record(image, sample, target, image_folder))
            except TaskFailure as exc:
                raise ImageFailure(exc.stage, exc.file, exc.reason) from exc
        return records

    def _derain(self, method: DerainMethod, rainy: np.ndarray, sample: Sample, ensure_loaded) -> tuple[np.ndarray, float]:
        try:
            ensure_loaded()
        except BenchError as exc:
            raise MethodBroken(str(exc)) from exc
        except Exception as exc:
            raise MethodBroken(f"{type(exc).__name__}: {exc}") from exc
        batch = torch.from_numpy(np.ascontiguousarray(rainy)).permute(2, 0, 1)[None].to(self.device)
        start = time.perf_counter()
        try:
            with torch.inference_mode():
                result = tiled_apply(method.derain, batch, method.max_tile, method.tile_overlap)
        except Exception as exc:
            raise ImageFailure("method", sample.input, f"{method.spec} raised {type(exc).__name__}: {exc}") from exc
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        ms = (time.perf_counter() - start) * 1000.0
        if not isinstance(result, torch.Tensor) or tuple(result.shape) != tuple(batch.shape):
            shape = tuple(result.shape) if isinstance(result, torch.Tensor) else type(result).__name__
            raise ImageFailure("method", sample.input,
                               f"{method.spec} returned {shape} for an input of shape {tuple(batch.shape)}; "
                               f"derain must return float Bx3xHxW of the input's size")
        if not torch.isfinite(result).all():
            raise ImageFailure("method", sample.input, f"{method.spec} returned NaN or infinite values")
        output = result[0].permute(1, 2, 0).clamp(0, 1).float().cpu().numpy()
        return output, ms
