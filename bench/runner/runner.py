"""Run methods over datasets: derain (or reuse cached outputs), measure, store; resumable per image."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from bench.config import Settings
from bench.data.cards import Dataset, open_dataset
from bench.data.layouts import Sample
from bench.errors import BadInputError, BenchError, UnavailableError
from bench.images import read_image, read_png16, to_uint16, write_png16
from bench.methods.api import DerainMethod, PrecomputedMethod
from bench.methods.registry import create_method
from bench.methods.weights import resolve_weights, weights_hash
from bench.metrics.profiles import compute_full_reference, quantise_output
from bench.metrics.registry import NO_REFERENCE_METRICS, no_reference_metric
from bench.results.store import ANY, NO_PROFILE, ResultKey, ResultsStore, TaskRecord
from bench.runner.downstream import DownstreamJob, TaskFailure, plan_downstream
from bench.runner.provenance import provenance
from bench.runner.tiling import tiled_apply


@dataclass
class RunSummary:
    computed: int = 0  # images measured in this run
    skipped: int = 0  # images already finished in the store
    failed: int = 0
    unavailable: list[tuple[str, str]] = field(default_factory=list)  # (what, reason)
    run_id: str = ""


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


GT_METHOD = "gt"  # the row of task models run on the clean targets


class ImageFailure(Exception):
    """One image could not be measured: stage, file and reason go to the store."""

    def __init__(self, stage: str, file: Path | str, reason: str) -> None:
        super().__init__(reason)
        self.stage, self.file, self.reason = stage, str(file), reason


class Runner:
    """Owns devices, batching, tiling, timing and saving outputs; plugins only derain."""

    def __init__(self, settings: Settings, store: ResultsStore, *, console: Console | None = None,
                 device: str | None = None, show_progress: bool = True) -> None:
        self.settings = settings
        self.store = store
        self.console = console or Console(stderr=True)
        self.device = pick_device(device or settings.device)
        self.show_progress = show_progress
        if settings.threads > 0:
            torch.set_num_threads(settings.threads)
        self._nr_metrics: list | None = None
        self.jobs: dict[str, list[DownstreamJob]] = {}  # dataset name -> downstream jobs of this run

    # ------------------------------------------------------------------------------------------------
    def run(self, method_specs: list[str], dataset_specs: list[str], profiles: list[str],
            limit: int | None = None, command: str = "bench run", tasks: list[str] | None = None,
            task_models: dict[str, str] | None = None, pseudo_labels: bool = False) -> RunSummary:
        """tasks: downstream tasks to score (None: each labelled dataset's own task; []: none);
        task_models: task -> task model spec (else bench.toml, else the defaults); pseudo_labels: datasets
        without labels for a task are scored against the task model's output on their clean targets."""
        summary = RunSummary(run_id=time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6])
        self.store.start_run(summary.run_id, provenance(self.settings, str(self.device), command))
        status = "interrupted"
        try:
            datasets = self._open_datasets(dataset_specs, summary)
            if tasks is None or tasks:
                self.jobs = plan_downstream(
                    datasets, tasks, {**self.settings.task_models, **(task_models or {})}, pseudo_labels, self.store,
                    self.settings.outputs_dir / "references", self.device, self.settings.weights_dir,
                    self.settings.download, summary.run_id, summary.unavailable)
                for dataset in datasets:
                    if dataset.name in self.jobs:
                        self._run_reference_row(dataset, limit, summary)
            for spec in method_specs:
                self._run_method(spec, datasets, profiles, limit, summary)
            status = "finished"
        finally:
            self.store.finish_run(summary.run_id, status)
        return summary

    def _open_datasets(self, specs: list[str], summary: RunSummary) -> list[Dataset]:
        datasets = []
        for spec in specs:
            try:
                datasets.append(open_dataset(spec, self.settings))
                self.store.clear_unavailable(ANY, "", spec)
            except UnavailableError as exc:
                summary.unavailable.append((f"dataset {spec}", str(exc)))
                self.store.put_unavailable(ANY, "", spec, str(exc), "dataset", summary.run_id)
        return datasets

    def _prepare_method(self, spec: str, summary: RunSummary) -> tuple[DerainMethod, str] | None:
        try:
            method = create_method(spec)
            paths = resolve_weights(method, self.settings.weights_dir, self.settings.download)
            method.data_root = self.settings.data_root
            reason = method.unavailable_reason()
            if reason is not None:
                raise UnavailableError(reason)
        except (UnavailableError, BadInputError) as exc:
            name, _, variant = spec.partition(":")
            summary.unavailable.append((f"method {spec}", str(exc)))
            self.store.put_unavailable(name, variant or "default", ANY, str(exc), "method", summary.run_id)
            return None
        method.weights = paths
        whash = weights_hash(paths)
        self.store.clear_unavailable(method.info.name, method.variant, ANY)
        self.store.record_method(
            method.info.name, method.variant, whash, spec=method.spec, label=method.info.label, kind=method.info.kind,
            paper=method.info.paper, note=method.variant_info.note,
            weights={k: str(v) for k, v in paths.items()}, run_id=summary.run_id)
        return method, whash

    def _run_method(self, spec: str, datasets: list[Dataset], profiles: list[str], limit: int | None,
                    summary: RunSummary) -> None:
        prepared = self._prepare_method(spec, summary)
        if prepared is None:
            return
        method, whash = prepared
        loaded = isinstance(method, PrecomputedMethod)

        def ensure_loaded() -> None:
            nonlocal loaded
            if not loaded:
                method.load(self.device)
                loaded = True

        try:
            for dataset in datasets:
                key = ResultKey(method.info.name, method.variant, whash, dataset.name)
                self._run_dataset(method, key, dataset, profiles, limit, summary, ensure_loaded)
            if not isinstance(method, PrecomputedMethod):
                self._efficiency(method, whash, summary, ensure_loaded)
        except _MethodBroken as exc:
            summary.unavailable.append((f"method {method.spec}", exc.reason))
            self.store.put_unavailable(method.info.name, method.variant, ANY, exc.reason, "method", summary.run_id)
            self.console.print(f"[red]method {method.spec} failed to load:[/red] {exc.reason}")

    def _needed(self, dataset: Dataset, sample: Sample, profiles: list[str]) -> set[tuple[str, str]]:
        if dataset.card.paired:
            return {(m, p) for p in profiles for m in ("psnr", "ssim")}
        return {(m.info.name, NO_PROFILE) for m in self._available_nr_metrics()}

    def _available_nr_metrics(self) -> list:
        if self._nr_metrics is None:
            self._nr_metrics = []
            for name in NO_REFERENCE_METRICS:
                try:
                    metric = no_reference_metric(name)
                    reason = metric.unavailable_reason()
                except BenchError as exc:
                    reason = str(exc)
                if reason is None:
                    self._nr_metrics.append(metric)
                    self.store.clear_unavailable(ANY, "", f"metric:{name}")
                else:
                    self.store.put_unavailable(ANY, "", f"metric:{name}", reason, "metric", "")
        return self._nr_metrics

    def _run_dataset(self, method: DerainMethod, key: ResultKey, dataset: Dataset, profiles: list[str],
                     limit: int | None, summary: RunSummary, ensure_loaded) -> None:
        samples = dataset.samples[:limit] if limit else dataset.samples
        if isinstance(method, PrecomputedMethod) and not any(
                method.output_path(dataset.card.name, s.image_id) for s in samples):
            reason = f"{method.spec} has no published outputs for {dataset.name}"
            summary.unavailable.append((f"method {method.spec} on {dataset.name}", reason))
            self.store.put_unavailable(method.info.name, method.variant, dataset.name, reason, "method-dataset",
                                       summary.run_id)
            return
        done = self.store.done_images(key)
        jobs = self.jobs.get(dataset.name, [])
        done_tasks = self.store.done_task_images(key) if jobs else {}
        todo = [s for s in samples if not self._needed(dataset, s, profiles) <= done.get(s.image_id, set())
                or not {j.key for j in jobs} <= done_tasks.get(s.image_id, set())]
        summary.skipped += len(samples) - len(todo)
        if not todo:
            return
        with self._progress() as progress:
            task = progress.add_task(f"{method.spec} on {dataset.name}", total=len(todo))
            for sample in todo:
                try:
                    values, records = self._measure(method, key, dataset, sample, profiles, ensure_loaded)
                    self.store.put_image(key, sample.image_id, values, summary.run_id, records)
                    summary.computed += 1
                except ImageFailure as exc:
                    self.store.put_failure(key, sample.image_id, exc.stage, exc.file, exc.reason, summary.run_id)
                    summary.failed += 1
                    progress.console.print(f"[yellow]{method.spec} / {dataset.name} / {sample.image_id}:[/yellow] "
                                           f"{exc.file}: {exc.reason}")
                progress.advance(task)

    def _progress(self) -> Progress:
        return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("ETA"), TimeRemainingColumn(), console=self.console, disable=not self.show_progress,
                        transient=False)

    def output_path(self, key: ResultKey, image_id: str) -> Path:
        return self.settings.outputs_dir / key.method / key.variant / key.weights_hash / key.dataset / f"{image_id}.png"

    # one image ----------------------------------------------------------------------------------------
    def _read(self, stage: str, path: Path, resize: tuple[int, int] | None) -> np.ndarray:
        try:
            image = read_image(path)
        except BadInputError as exc:
            raise ImageFailure(stage, path, str(exc).removeprefix(f"{path}: ")) from exc
        return _resize(image, resize) if resize else image

    def _measure(self, method: DerainMethod, key: ResultKey, dataset: Dataset, sample: Sample,
                 profiles: list[str], ensure_loaded) -> tuple[list[tuple[str, str, float, str]], list[TaskRecord]]:
        resize = dataset.spec.resize
        values: list[tuple[str, str, float, str]] = []
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
            for metric in self._available_nr_metrics():
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

    def _run_reference_row(self, dataset: Dataset, limit: int | None, summary: RunSummary) -> None:
        """The GT row: task models on the clean targets (not ranked; the upper bound a deraining method aims at)."""
        if not dataset.card.paired:
            return
        key = ResultKey(GT_METHOD, "default", "none", dataset.name)
        self.store.record_method(GT_METHOD, "default", "none", spec=GT_METHOD, label="GT (clean target)",
                                 kind="reference", paper="", note="task models on the clean target", weights={},
                                 run_id=summary.run_id)
        samples = dataset.samples[:limit] if limit else dataset.samples
        wanted = {j.key for j in self.jobs[dataset.name]}
        done = self.store.done_task_images(key)
        todo = [s for s in samples if not wanted <= done.get(s.image_id, set())]
        if not todo:
            return
        with self._progress() as progress:
            task = progress.add_task(f"GT (clean) on {dataset.name}", total=len(todo))
            for sample in todo:
                try:
                    if sample.target is None:
                        raise ImageFailure("pair", sample.missing_target or sample.input,
                                           "missing target (ground truth) for this input; add it or remove the input")
                    target = self._read("target", sample.target, dataset.spec.resize)
                    folder = self.output_path(key, sample.image_id).parent
                    self.store.put_image(key, sample.image_id, [], summary.run_id,
                                         self._task_records(dataset, sample, target, target, folder))
                except ImageFailure as exc:
                    self.store.put_failure(key, sample.image_id, exc.stage, exc.file, exc.reason, summary.run_id)
                    summary.failed += 1
                    progress.console.print(f"[yellow]GT / {dataset.name} / {sample.image_id}:[/yellow] {exc.file}: {exc.reason}")
                progress.advance(task)

    def _derain(self, method: DerainMethod, rainy: np.ndarray, sample: Sample, ensure_loaded) -> tuple[np.ndarray, float]:
        try:
            ensure_loaded()
        except BenchError as exc:
            raise _MethodBroken(str(exc)) from exc
        except Exception as exc:
            raise _MethodBroken(f"{type(exc).__name__}: {exc}") from exc
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

    def _efficiency(self, method: DerainMethod, whash: str, summary: RunSummary, ensure_loaded) -> None:
        """Parameters, FLOPs and ms/image at the configured size, once per method, weights and device."""
        from bench.metrics.efficiency import measure_efficiency

        size = parse_size(self.settings.efficiency_size)
        if size is None:
            return
        width, height = size
        profile = f"{self.device.type}@{width}x{height}"
        key = ResultKey(method.info.name, method.variant, whash, ANY)
        if any(p == profile for _, p in self.store.done_metrics(key, ANY)):
            return
        try:
            ensure_loaded()
            figures = measure_efficiency(method, self.device, size=(height, width))
        except Exception as exc:
            self.console.print(f"[yellow]{method.spec}: efficiency not measured:[/yellow] {type(exc).__name__}: {exc}")
            return
        self.store.put_image(key, ANY, [(m, profile, v, "torch") for m, v in figures.items()], summary.run_id)


def parse_size(text: str) -> tuple[int, int] | None:
    """"481x321" -> (481, 321) (width, height); "off" -> None."""
    if text.strip().lower() == "off":
        return None
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise BadInputError(f"efficiency size {text!r}: expected WIDTHxHEIGHT (e.g. 481x321) or off")
    return int(width), int(height)


class _MethodBroken(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
