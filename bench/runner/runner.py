"""Run methods over datasets: plan what is left, hand it to an executor, commit each image; resumable per image.

The runner plans (datasets, methods and their weights, what each (method, dataset) still needs, downstream
jobs, the GT row, efficiency) and is the only writer of the results store; an executor (local: this
process; ray: workers on a cluster) carries out the per-image work (bench/runner/image_work.py) and hands
every image's result back to :meth:`Runner.commit` as it arrives.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from bench.config import Settings
from bench.data.cards import Dataset, open_dataset
from bench.data.layouts import Sample
from bench.errors import BadInputError, BenchError, UnavailableError
from bench.methods.api import DerainMethod, PrecomputedMethod
from bench.methods.registry import create_method
from bench.methods.weights import resolve_weights, weights_hash
from bench.metrics.registry import NO_REFERENCE_METRICS, no_reference_metric
from bench.results.store import ANY, NO_PROFILE, ResultKey, ResultsStore
from bench.runner.downstream import DownstreamJob, plan_downstream
from bench.runner.image_work import ImageFailure, ImageResult, ImageWork, pick_device
from bench.runner.plan import ImageGroup, MethodWork
from bench.runner.precision import check_precision, method_precision
from bench.runner.provenance import provenance

__all__ = ["GT_METHOD", "ImageFailure", "Runner", "RunSummary", "parse_size", "pick_device"]


@dataclass
class RunSummary:
    computed: int = 0  # images measured in this run
    skipped: int = 0  # images already finished in the store
    failed: int = 0
    unavailable: list[tuple[str, str]] = field(default_factory=list)  # (what, reason)
    run_id: str = ""


GT_METHOD = "gt"  # the row of task models run on the clean targets


class Runner:
    """Plans a run and commits its results; the executor decides where the per-image work runs."""

    def __init__(self, settings: Settings, store: ResultsStore, *, console: Console | None = None,
                 device: str | None = None, show_progress: bool = True, executor=None) -> None:
        from bench.executors.local import LocalExecutor

        self.settings = settings
        self.store = store
        self.console = console or Console(stderr=True)
        self.executor = executor or LocalExecutor(settings.batch_size, settings.pipeline_depth)
        self.device = self.executor.driver_device(device or settings.device)
        self.show_progress = show_progress
        if settings.threads > 0:
            import torch

            torch.set_num_threads(settings.threads)
        self._nr_metrics: list | None = None
        self.jobs: dict[str, list[DownstreamJob]] = {}  # dataset name -> downstream jobs of this run
        self.work = ImageWork(self.device, settings.outputs_dir, self.jobs, self.available_nr_metrics)
        self.profiles: list[str] = []
        self.summary = RunSummary()

    # ------------------------------------------------------------------------------------------------
    def run(self, method_specs: list[str], dataset_specs: list[str], profiles: list[str],
            limit: int | None = None, command: str = "bench run", tasks: list[str] | None = None,
            task_models: dict[str, str] | None = None, pseudo_labels: bool = False) -> RunSummary:
        """tasks: downstream tasks to score (None: each labelled dataset's own task; []: none);
        task_models: task -> task model spec (else bench.toml, else the defaults); pseudo_labels: datasets
        without labels for a task are scored against the task model's output on their clean targets."""
        summary = self.summary = RunSummary(run_id=time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6])
        self.profiles = profiles
        status = "interrupted"
        try:
            self.executor.start()  # before planning: a cluster's resources decide the workers' device
            warning = check_precision(self.settings.precision, self.executor.device_type(self.device))
            if warning:
                self.console.print(f"[yellow]{warning}[/yellow]")
            self.store.start_run(summary.run_id, provenance(self.settings, self.executor.device_label(self.device), command,
                                                            executor=self.executor.name))
            datasets = self._open_datasets(dataset_specs, summary)  # embedded and derived sets are generated here, once
            plan: list[MethodWork] = []
            if tasks is None or tasks:
                self.jobs.update(plan_downstream(
                    datasets, tasks, {**self.settings.task_models, **(task_models or {})}, pseudo_labels, self.store,
                    self.settings.outputs_dir / "references", self.device, self.settings.weights_dir,
                    self.settings.download, summary.run_id, summary.unavailable))
                reference_rows = MethodWork(None, "none")
                for dataset in datasets:
                    if dataset.name in self.jobs:
                        reference_rows.groups += self._plan_reference_row(dataset, limit, summary)
                if reference_rows.groups:
                    plan.append(reference_rows)
            for spec in method_specs:
                work = self._plan_method(spec, datasets, profiles, limit, summary)
                if work is not None:
                    plan.append(work)
            self.executor.run(plan, self)
            status = "finished"
        finally:
            try:
                self.executor.stop()
            finally:
                self.store.finish_run(summary.run_id, status, workers=self.executor.workers,
                                      nodes=sorted(self.executor.nodes))
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

    def _plan_method(self, spec: str, datasets: list[Dataset], profiles: list[str], limit: int | None,
                     summary: RunSummary) -> MethodWork | None:
        prepared = self._prepare_method(spec, summary)
        if prepared is None:
            return None
        method, whash = prepared
        work = MethodWork(method, whash, precision=method_precision(method, self.settings.precision))
        for dataset in datasets:
            key = ResultKey(method.info.name, method.variant, whash, dataset.name, work.precision)
            work.groups += self._plan_dataset(method, key, dataset, profiles, limit, summary)
        if not isinstance(method, PrecomputedMethod):
            work.efficiency_size = self._efficiency_needed(method, whash, work.precision)
        return work

    def _needed(self, dataset: Dataset, sample: Sample, profiles: list[str]) -> set[tuple[str, str]]:
        if dataset.card.paired:
            return {(m, p) for p in profiles for m in ("psnr", "ssim")}
        return {(m.info.name, NO_PROFILE) for m in self.available_nr_metrics()}

    def available_nr_metrics(self) -> list:
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

    def _plan_dataset(self, method: DerainMethod, key: ResultKey, dataset: Dataset, profiles: list[str],
                      limit: int | None, summary: RunSummary) -> list[ImageGroup]:
        samples = dataset.samples[:limit] if limit else dataset.samples
        if isinstance(method, PrecomputedMethod) and not any(
                method.output_path(dataset.card.name, s.image_id) for s in samples):
            reason = f"{method.spec} has no published outputs for {dataset.name}"
            summary.unavailable.append((f"method {method.spec} on {dataset.name}", reason))
            self.store.put_unavailable(method.info.name, method.variant, dataset.name, reason, "method-dataset",
                                       summary.run_id)
            return []
        done = self.store.done_images(key)
        jobs = self.jobs.get(dataset.name, [])
        done_tasks = self.store.done_task_images(key) if jobs else {}
        todo = [s for s in samples if not self._needed(dataset, s, profiles) <= done.get(s.image_id, set())
                or not {j.key for j in jobs} <= done_tasks.get(s.image_id, set())]
        summary.skipped += len(samples) - len(todo)
        return [ImageGroup(key, dataset, todo, f"{method.spec} on {dataset.name}", method.spec)] if todo else []

    def _plan_reference_row(self, dataset: Dataset, limit: int | None, summary: RunSummary) -> list[ImageGroup]:
        """The GT row: task models on the clean targets (not ranked; the upper bound a deraining method aims at)."""
        if not dataset.card.paired:
            return []
        key = ResultKey(GT_METHOD, "default", "none", dataset.name)
        self.store.record_method(GT_METHOD, "default", "none", spec=GT_METHOD, label="GT (clean target)",
                                 kind="reference", paper="", note="task models on the clean target", weights={},
                                 run_id=summary.run_id)
        samples = dataset.samples[:limit] if limit else dataset.samples
        wanted = {j.key for j in self.jobs[dataset.name]}
        done = self.store.done_task_images(key)
        todo = [s for s in samples if not wanted <= done.get(s.image_id, set())]
        return [ImageGroup(key, dataset, todo, f"GT (clean) on {dataset.name}", "GT", reference_row=True)] if todo else []

    def _efficiency_needed(self, method: DerainMethod, whash: str, precision: str) -> tuple[int, int] | None:
        """(width, height) when the efficiency of this method, weights and precision is not yet stored for the
        executor's device."""
        size = parse_size(self.settings.efficiency_size)
        if size is None:
            return None
        profile = f"{self.executor.device_type(self.device)}@{size[0]}x{size[1]}"
        key = ResultKey(method.info.name, method.variant, whash, ANY, precision)
        return None if any(p == profile for _, p in self.store.done_metrics(key, ANY)) else size

    # what executors call --------------------------------------------------------------------------------
    def progress(self) -> Progress:
        return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("ETA"), TimeRemainingColumn(), console=self.console, disable=not self.show_progress,
                        transient=False)

    def commit(self, group: ImageGroup, image_id: str, result: ImageResult, console: Console) -> None:
        """Store one image's figures and records (one transaction), or its failure, and say so."""
        exc = result.failure
        if exc is None:
            self.store.put_image(group.key, image_id, result.values, self.summary.run_id, result.records)
            if not group.reference_row:
                self.summary.computed += 1
            return
        self.store.put_failure(group.key, image_id, exc.stage, exc.file, exc.reason, self.summary.run_id)
        self.summary.failed += 1
        console.print(f"[yellow]{group.who} / {group.dataset.name} / {image_id}:[/yellow] {exc.file}: {exc.reason}")

    def method_broken(self, work: MethodWork, reason: str) -> None:
        """The method failed to load: listed as not run, with the reason."""
        method = work.method
        self.summary.unavailable.append((f"method {method.spec}", reason))
        self.store.put_unavailable(method.info.name, method.variant, ANY, reason, "method", self.summary.run_id)
        self.console.print(f"[red]method {method.spec} failed to load:[/red] {reason}")

    def commit_efficiency(self, work: MethodWork, device_type: str, figures: dict[str, float]) -> None:
        """Parameters, FLOPs and ms/image at the configured size, once per method, weights and device."""
        width, height = work.efficiency_size
        key = ResultKey(work.method.info.name, work.method.variant, work.weights_hash, ANY, work.precision)
        profile = f"{device_type}@{width}x{height}"
        self.store.put_image(key, ANY, [(m, profile, v, "torch") for m, v in figures.items()], self.summary.run_id)

    def efficiency_failed(self, work: MethodWork, reason: str) -> None:
        self.console.print(f"[yellow]{work.spec}: efficiency not measured:[/yellow] {reason}")


def parse_size(text: str) -> tuple[int, int] | None:
    """"481x321" -> (481, 321) (width, height); "off" -> None."""
    if text.strip().lower() == "off":
        return None
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise BadInputError(f"efficiency size {text!r}: expected WIDTHxHEIGHT (e.g. 481x321) or off")
    return int(width), int(height)

