"""What a worker process does (the body of a Ray actor; no Ray import here).

A worker rebuilds what it needs from small descriptions sent by the driver (the method spec and its
resolved weights, the dataset spec, the downstream jobs), keeps one loaded method (and its task models)
for as long as it is given images of that method, and runs the same per-image function as the local
executor (bench/runner/image_work.py). It never writes the results store: it returns each image's
result to the driver, which commits it.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from bench.config import Settings
from bench.data.cards import Dataset
from bench.data.layouts import Sample
from bench.errors import BenchError
from bench.results.store import ResultKey
from bench.runner.image_work import ImageFailure, ImageResult, ImageWork, MethodBroken

Files = tuple[tuple[str, str], ...]  # (weights file name, path) pairs


@dataclass(frozen=True)
class MethodDesc:
    """A prepared method as the driver resolved it: spec, weights paths, data root and the precision it runs in."""

    spec: str
    weights: Files
    data_root: str
    precision: str

    @classmethod
    def of(cls, method, precision: str) -> MethodDesc:
        return cls(method.spec, tuple((k, str(v)) for k, v in sorted(method.weights.items())), str(method.data_root or ""),
                   precision)


@dataclass(frozen=True)
class JobDesc:
    """A downstream job: which task model (spec, weights, record key) against which reference on which dataset."""

    dataset: str
    task_model: str
    model_id: str
    weights: Files
    reference: str

    @classmethod
    def of(cls, job) -> JobDesc:
        model = job.loaded.model
        return cls(job.dataset.name, model.spec, job.loaded.model_id,
                   tuple((k, str(v)) for k, v in sorted(model.weights.items())), job.reference)


@dataclass
class ImageTask:
    """One image to measure. method None: the GT row (task models on the clean target).
    references: pseudo-label boxes the driver's store already holds, by (task model id, reference): a cache."""

    method: MethodDesc | None
    key: ResultKey
    dataset: str
    image_id: str
    profiles: tuple[str, ...]
    jobs: tuple[JobDesc, ...] = ()
    nr_metrics: tuple[str, ...] = ()
    references: dict[tuple[str, str], dict] = field(default_factory=dict)


@dataclass
class Reply:
    """A worker's answer. result: the image's result; files: outputs shipped back (no shared filesystem),
    by path relative to the output folder; broken: the method failed to load; error: anything else (the
    run stops with it; bench_error: it is a BenchError, shown as one line)."""

    node: str
    result: ImageResult | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    broken: str | None = None
    error: str | None = None
    bench_error: bool = False
    device_type: str = ""
    figures: dict[str, float] = field(default_factory=dict)


class _KnownReferences:
    """Stands in for the results store inside a worker: pseudo-label boxes the driver already had. A miss is
    not an error: the worker predicts them on the clean target, as the driver would."""

    def __init__(self) -> None:
        self.known: dict[tuple[str, str, str, str], dict] = {}

    def task_reference(self, dataset: str, image_id: str, task_model: str, reference: str) -> dict | None:
        return self.known.get((dataset, image_id, task_model, reference))


def node_name() -> str:
    """``hostname (ip)`` of this process's machine."""
    try:
        import ray

        ip = ray.util.get_node_ip_address()
    except Exception:  # not inside Ray
        ip = "?"
    return f"{socket.gethostname()} ({ip})"


class ImageWorker:
    """One worker process: ``threads`` torch threads; with ``shared_fs`` False its outputs go to a scratch
    folder and travel back with each reply."""

    def __init__(self, settings: Settings, plugin_files: list[Path], threads: int, shared_fs: bool) -> None:
        self.node = node_name()
        self.startup_error: str | None = None
        try:
            import torch

            from bench.cli.common import load_plugins, set_offline_friendly_defaults
            from bench.runner.image_work import pick_device

            set_offline_friendly_defaults()
            torch.set_num_threads(max(1, threads))
            self.settings = settings
            self.device = pick_device(settings.device)
            load_plugins(list(plugin_files), settings)
        except Exception as exc:  # reported by info(), so that the driver stops with the reason
            self.startup_error = f"worker on {self.node} could not start: {type(exc).__name__}: {exc}"
            return
        self.scratch = None if shared_fs else Path(tempfile.mkdtemp(prefix="bench-worker-"))
        outputs = self.scratch / "outputs" if self.scratch else settings.outputs_dir
        self.jobs: dict[str, list] = {}
        self.job_descs: dict[str, tuple[JobDesc, ...]] = {}
        self.work = ImageWork(self.device, outputs, self.jobs, self._nr_metrics)
        self.references_dir = outputs / "references"
        self.store = _KnownReferences()
        self.datasets: dict[str, tuple[Dataset, dict[str, Sample]]] = {}
        self.task_models: dict[tuple[str, str], object] = {}
        self.nr_names: tuple[str, ...] = ()
        self.nr_cache: dict[str, object] = {}
        self.method_desc: MethodDesc | None = None
        self.method = None
        self.loaded = False

    def info(self) -> dict:
        from bench.runner.provenance import package_versions

        return {"node": self.node, "error": self.startup_error, "versions": package_versions(), "pid": os.getpid(),
                "device": str(getattr(self, "device", ""))}

    # one image ------------------------------------------------------------------------------------
    def measure(self, task: ImageTask) -> Reply:
        try:
            dataset, samples = self._dataset(task.dataset)
            if self.job_descs.get(dataset.name) != task.jobs:
                self.jobs[dataset.name] = [self._job(j, dataset) for j in task.jobs]
                self.job_descs[dataset.name] = task.jobs
            self.nr_names = task.nr_metrics
            self.store.known = {(task.dataset, task.image_id, *k): v for k, v in task.references.items()}
            sample = samples.get(task.image_id)
            if sample is None:
                result = ImageResult(failure=ImageFailure(
                    "input", dataset.root, f"image {task.image_id} not found on {self.node}; the data root and cache "
                                           f"folder must hold the same files on every node"))
            elif task.method is None:
                result = self.work.reference(task.key, dataset, sample)
            else:
                method = self._method(task.method)
                result = self.work.measure(method, task.key, dataset, sample, list(task.profiles), self._load)
            return Reply(self.node, result, self._ship(task.key, dataset, task.image_id))
        except MethodBroken as exc:
            return Reply(self.node, broken=exc.reason)
        except BenchError as exc:
            return Reply(self.node, error=f"{exc} (on {self.node})", bench_error=True)
        except Exception:
            return Reply(self.node, error=f"worker on {self.node}:\n{traceback.format_exc()}")

    def efficiency(self, desc: MethodDesc, size: tuple[int, int]) -> Reply:
        """Parameters, FLOPs, ms/image and peak memory of ``desc`` at size (width, height) on this worker's device."""
        from bench.metrics.efficiency import measure_efficiency
        from bench.runner.precision import autocast

        try:
            method = self._method(desc)
            self._load()
            with autocast(self.device, desc.precision):
                figures = measure_efficiency(method, self.device, size=(size[1], size[0]))
        except MethodBroken as exc:
            return Reply(self.node, error=exc.reason)
        except Exception as exc:
            return Reply(self.node, error=f"{type(exc).__name__}: {exc}")
        return Reply(self.node, device_type=self.device.type, figures=figures)

    # what the descriptions rebuild ----------------------------------------------------------------
    def _dataset(self, spec: str) -> tuple[Dataset, dict[str, Sample]]:
        if spec not in self.datasets:
            from bench.data.cards import open_dataset

            dataset = open_dataset(spec, self.settings)
            self.datasets[spec] = dataset, {s.image_id: s for s in dataset.samples}
        return self.datasets[spec]

    def _job(self, desc: JobDesc, dataset: Dataset):
        from bench.runner.downstream import DownstreamJob, LoadedTaskModel
        from bench.tasks.registry import create_task_model

        key = (desc.task_model, desc.model_id)
        if key not in self.task_models:
            model = create_task_model(desc.task_model)
            model.weights = _existing(desc.weights, f"task model {desc.task_model}", self.node)
            model.load(self.device)
            self.task_models[key] = LoadedTaskModel(model, desc.model_id)
        return DownstreamJob(dataset, self.task_models[key], desc.reference, self.store, self.references_dir)

    def _nr_metrics(self) -> list:
        from bench.metrics.registry import no_reference_metric

        for name in self.nr_names:
            if name not in self.nr_cache:
                self.nr_cache[name] = no_reference_metric(name)
        return [self.nr_cache[name] for name in self.nr_names]

    def _method(self, desc: MethodDesc):
        """The method of ``desc``, built once and kept until another method is asked for."""
        if desc != self.method_desc:
            from bench.methods.registry import create_method

            self.method, self.method_desc, self.loaded = None, None, False
            _free_device_memory(self.device)
            try:
                method = create_method(desc.spec)
                method.weights = _existing(desc.weights, f"method {desc.spec}", self.node)
            except BenchError as exc:
                raise MethodBroken(str(exc)) from exc
            method.data_root = Path(desc.data_root) if desc.data_root else None
            self.method, self.method_desc = method, desc
            self.loaded = isinstance(method, _precomputed_class())
        return self.method

    def _load(self) -> None:
        if not self.loaded:
            from bench.runner.precision import load_method

            load_method(self.method, self.device, self.method_desc.precision)
            self.loaded = True

    def _ship(self, key: ResultKey, dataset: Dataset, image_id: str) -> dict[str, bytes]:
        """Without a shared filesystem: the files this image wrote, read back and removed from the scratch folder."""
        if self.scratch is None:
            return {}
        files = {}
        outputs = self.work.outputs_dir
        for path in self.work.written_files(key, dataset, image_id):
            if path.is_file():
                files[path.relative_to(outputs).as_posix()] = path.read_bytes()
                path.unlink()
        return files

    def close(self) -> None:
        """Remove the scratch folder (no shared filesystem); called before the worker is stopped."""
        if getattr(self, "scratch", None) is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


def _existing(weights: Files, owner: str, node: str) -> dict[str, Path]:
    from bench.errors import BadInputError

    paths = {name: Path(path) for name, path in weights}
    for name, path in paths.items():
        if not path.is_file():
            raise BadInputError(f"{owner}: weights file {name} not found at {path} on {node}; the weights folder must be "
                               f"at the same path on every node (a shared filesystem, or a copy)")
    return paths


def _precomputed_class():
    from bench.methods.api import PrecomputedMethod

    return PrecomputedMethod


def _free_device_memory(device) -> None:
    import gc

    gc.collect()
    if getattr(device, "type", "") == "cuda":
        import torch

        torch.cuda.empty_cache()
