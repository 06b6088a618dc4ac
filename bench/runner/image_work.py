"""The per-image work of a run: one sample in, its figures, downstream records or failure out.

Three stages: :meth:`ImageWork.prepare` reads the input and target (with the dataset's resize),
:meth:`ImageWork.derain` runs the network on a batch of equal-size inputs (tiled, checked), and
:meth:`ImageWork.finish` writes the 16-bit output and computes the full-reference profiles or no-reference
metrics and the downstream records. :meth:`ImageWork.measure` chains them for one image (a Ray worker);
the local executor runs the same stages as a pipeline (bench/runner/pipeline.py). It never writes the
results store: the runner commits what it returns.
"""

from __future__ import annotations

import threading
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
from bench.runner.precision import autocast, channels_last
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
class Prepared:
    """One sample on its way through the stages. rainy: the input to derain (float32 HxWx3 in [0,1]), None when
    the output needs no network; output: the derained or published output (float32 HxWx3 in [0,1]) still to
    write; output16: an output already on disk (uint16 HxWx3); time_ms: the network's time for this image."""

    sample: Sample
    reference_row: bool = False
    target: np.ndarray | None = None
    rainy: np.ndarray | None = None
    output: np.ndarray | None = None
    output16: np.ndarray | None = None
    time_ms: float | None = None
    failure: ImageFailure | None = None


@dataclass
class ImageResult:
    """What one sample gave: figures and downstream records to commit, or the failure to store."""

    values: list[Value] = field(default_factory=list)
    records: list[TaskRecord] = field(default_factory=list)
    failure: ImageFailure | None = None


class ImageWork:
    """The per-image function. ``jobs``: dataset name -> downstream jobs; ``nr_metrics``: the available
    no-reference metrics (called when an unpaired image needs them); outputs go under ``outputs_dir``.
    :meth:`finish` may run in several threads at once: no-reference metrics and task models (whose models are
    not thread-safe) take turns."""

    def __init__(self, device: torch.device, outputs_dir: Path, jobs: dict[str, list[DownstreamJob]],
                 nr_metrics: Callable[[], list]) -> None:
        self.device, self.outputs_dir, self.jobs, self.nr_metrics = device, outputs_dir, jobs, nr_metrics
        self.models_lock = threading.Lock()

    def output_path(self, key: ResultKey, image_id: str) -> Path:
        return key.output_folder(self.outputs_dir) / f"{image_id}.png"

    def written_files(self, key: ResultKey, dataset: Dataset, image_id: str) -> list[Path]:
        """The files measuring this image may have written: its output and segmentation predictions."""
        folder = self.output_path(key, image_id).parent
        return [self.output_path(key, image_id)] + [job.prediction_path(folder, image_id)
                                                    for job in self.jobs.get(dataset.name, []) if job.task == "segmentation"]

    # one image, all stages (a Ray worker) -------------------------------------------------------------
    def measure(self, method: DerainMethod, key: ResultKey, dataset: Dataset, sample: Sample, profiles: list[str],
                ensure_loaded: Callable[[], None]) -> ImageResult:
        """A method's output on one sample, measured. Raises MethodBroken when the method cannot load."""
        item = self.prepare(method, key, dataset, sample)
        if item.rainy is not None:
            self.derain(method, key, [item], ensure_loaded)
        return self.finish(key, dataset, item, profiles)

    def reference(self, key: ResultKey, dataset: Dataset, sample: Sample) -> ImageResult:
        """The GT row of one sample: the task models on its clean target."""
        return self.finish(key, dataset, self.prepare(None, key, dataset, sample), [])

    # the stages ---------------------------------------------------------------------------------------
    def prepare(self, method: DerainMethod | None, key: ResultKey, dataset: Dataset, sample: Sample) -> Prepared:
        """Read what ``sample`` needs (method None: the GT row, its clean target only)."""
        item = Prepared(sample, reference_row=method is None)
        try:
            self._prepare(method, key, dataset, item)
        except ImageFailure as exc:
            item.failure = exc
        return item

    def _prepare(self, method: DerainMethod | None, key: ResultKey, dataset: Dataset, item: Prepared) -> None:
        sample, resize = item.sample, dataset.spec.resize
        if dataset.card.paired or method is None:
            if sample.target is None:
                raise ImageFailure("pair", sample.missing_target or sample.input,
                                   "missing target (ground truth) for this input; add it or remove the input")
            item.target = self._read("target", sample.target, resize)
        if method is None:
            return
        out_path = self.output_path(key, sample.image_id)
        if out_path.is_file():
            item.output16 = read_png16(out_path)
        elif isinstance(method, PrecomputedMethod):
            source = method.output_path(dataset.card.name, sample.image_id)
            if source is None:
                raise ImageFailure("method", sample.input, f"{method.spec} has no published output for {sample.image_id}")
            item.output = self._read("method-output", source, resize)
        else:
            rainy = self._read("input", sample.input, resize)
            if item.target is not None and item.target.shape != rainy.shape:
                raise ImageFailure("pair", sample.target,
                                   f"size {item.target.shape[1]}x{item.target.shape[0]} differs from input "
                                   f"{sample.input.name} ({rainy.shape[1]}x{rainy.shape[0]}); crop both to the same size")
            item.rainy = rainy

    def derain(self, method: DerainMethod, key: ResultKey, items: list[Prepared], ensure_loaded: Callable[[], None]) -> None:
        """Run the network once on the inputs of ``items`` (all the same size) in ``key.precision``; fill each
        item's output and time_ms (the batch's time over its images), or its failure. A batch that fails is run
        again one image at a time, so that one image's failure stays its own. Raises MethodBroken when the
        method cannot load."""
        try:
            ensure_loaded()
        except BenchError as exc:
            raise MethodBroken(str(exc)) from exc
        except Exception as exc:
            raise MethodBroken(f"{type(exc).__name__}: {exc}") from exc
        first = items[0].sample
        # one image: the 1x3xHxW view of its HxWx3 array the harness always passed; a batch: those views joined,
        # which gives the same memory layout (a stacked Bx3xHxW view would be channels_last, whose kernels
        # round differently)
        images = [torch.from_numpy(np.ascontiguousarray(item.rainy)).permute(2, 0, 1)[None] for item in items]
        batch = (images[0] if len(images) == 1 else torch.cat(images)).to(self.device)
        start = time.perf_counter()
        try:
            result = self._network(method, batch, key.precision)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
        except Exception as exc:
            if len(items) > 1:
                self._one_at_a_time(method, key, items, ensure_loaded)
                return
            items[0].failure = ImageFailure("method", first.input, f"{method.spec} raised {type(exc).__name__}: {exc}")
            return
        ms = (time.perf_counter() - start) * 1000.0 / len(items)
        if not isinstance(result, torch.Tensor) or tuple(result.shape) != tuple(batch.shape):
            if len(items) > 1:
                self._one_at_a_time(method, key, items, ensure_loaded)
                return
            shape = tuple(result.shape) if isinstance(result, torch.Tensor) else type(result).__name__
            items[0].failure = ImageFailure("method", first.input,
                                            f"{method.spec} returned {shape} for an input of shape {tuple(batch.shape)}; "
                                            f"derain must return float Bx3xHxW of the input's size")
            return
        for item, output in zip(items, result, strict=True):
            if not torch.isfinite(output).all():
                item.failure = ImageFailure("method", item.sample.input, f"{method.spec} returned NaN or infinite values")
            else:
                item.output = output.permute(1, 2, 0).clamp(0, 1).float().cpu().numpy()
                item.time_ms = ms
            item.rainy = None

    def _one_at_a_time(self, method: DerainMethod, key: ResultKey, items: list[Prepared], ensure_loaded) -> None:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()  # a batch that did not fit
        for item in items:
            self.derain(method, key, [item], ensure_loaded)

    def _network(self, method: DerainMethod, batch: torch.Tensor, precision: str) -> torch.Tensor:
        if channels_last(self.device, precision):
            batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), autocast(self.device, precision):
            result = tiled_apply(method.derain, batch, method.max_tile, method.tile_overlap)
        return result.float() if isinstance(result, torch.Tensor) else result

    def finish(self, key: ResultKey, dataset: Dataset, item: Prepared, profiles: list[str]) -> ImageResult:
        """Write the output and measure it (full-reference profiles, or no-reference metrics) and the downstream
        records; or the image's failure."""
        if item.failure is not None:
            return ImageResult(failure=item.failure)
        try:
            values, records = self._finish(key, dataset, item, profiles)
        except ImageFailure as exc:
            return ImageResult(failure=exc)
        return ImageResult(values, records)

    def _finish(self, key: ResultKey, dataset: Dataset, item: Prepared,
                profiles: list[str]) -> tuple[list[Value], list[TaskRecord]]:
        sample, target = item.sample, item.target
        folder = self.output_path(key, sample.image_id).parent
        if item.reference_row:
            with self.models_lock:
                return [], self._task_records(dataset, sample, target, target, folder)
        values: list[Value] = []
        output16 = item.output16
        if output16 is None:
            if item.time_ms is not None:
                values.append(("time_ms", NO_PROFILE, item.time_ms, ""))
            output16 = to_uint16(item.output)
            write_png16(self.output_path(key, sample.image_id), output16)
        if target is not None:
            if target.shape != output16.shape:
                raise ImageFailure("pair", sample.target, f"output size {output16.shape[1]}x{output16.shape[0]} "
                                   f"differs from target {target.shape[1]}x{target.shape[0]}")
            for profile in profiles:
                figures = compute_full_reference(output16, target, profile)
                values += [(metric, profile, value, "bench") for metric, value in figures.items()]
        output = (output16.astype(np.float32) / 65535.0) if dataset.name in self.jobs else None
        with self.models_lock:
            if target is None:
                image8 = quantise_output(output16, "round").astype(np.uint8)
                for metric in self.nr_metrics():
                    try:
                        values.append((metric.info.name, NO_PROFILE, float(metric.score(image8)), metric.implementation))
                    except Exception as exc:  # a metric failing on one image must not stop the run
                        raise ImageFailure("metric", sample.input,
                                           f"{metric.info.name}: {type(exc).__name__}: {exc}") from exc
            return values, self._task_records(dataset, sample, output, target, folder)

    # helpers ------------------------------------------------------------------------------------------
    def _read(self, stage: str, path: Path, resize: tuple[int, int] | None) -> np.ndarray:
        try:
            image = read_image(path)
        except BadInputError as exc:
            raise ImageFailure(stage, path, str(exc).removeprefix(f"{path}: ")) from exc
        return _resize(image, resize) if resize else image

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
