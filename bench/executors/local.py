"""The local executor (the default): every image in this process, in the planned order, through the pipeline
of bench/runner/pipeline.py (inputs read ahead, batched network, outputs written and measured behind it)."""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

import torch

from bench.methods.api import PrecomputedMethod
from bench.runner.image_work import MethodBroken, pick_device
from bench.runner.pipeline import measured_images
from bench.runner.plan import MethodWork
from bench.runner.precision import autocast, load_method

if TYPE_CHECKING:
    from bench.runner.runner import Runner


def default_batch_size(device: torch.device) -> int:
    """Images per network call when --batch-size is not given: 1 on a CPU (a batch only adds cache misses
    there; benchmarks/throughput.py measures it), 8 on a GPU (a single image leaves it idle)."""
    return 1 if device.type == "cpu" else 8


def writer_threads(device: torch.device) -> int:
    """Threads that write and measure outputs: one beside a network that holds every CPU core; on a GPU, up to 4
    (PNG encoding and PSNR/SSIM release the GIL)."""
    return 1 if device.type == "cpu" else max(1, min(4, (os.cpu_count() or 2) - 1))


class LocalExecutor:
    """batch_size: images per network call (0: :func:`default_batch_size`); depth: batches read ahead of the
    network and waiting behind it (0: every stage in turn, in one thread); both from the settings."""

    name = "local"

    def __init__(self, batch_size: int, depth: int) -> None:
        self.workers = 1
        self.nodes: set[str] = set()
        self.batch_size, self.depth = batch_size, depth

    def driver_device(self, name: str) -> torch.device:
        return pick_device(name)

    def device_type(self, device: torch.device) -> str:
        """The device type the images are measured on (efficiency figures are kept per device type)."""
        return device.type

    def device_label(self, device: torch.device) -> str:
        return str(device)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def run(self, plan: list[MethodWork], runner: Runner) -> None:
        self.nodes.add(socket.gethostname())
        for work in plan:
            self._run_method(work, runner)

    def _run_method(self, work: MethodWork, runner: Runner) -> None:
        method = work.method
        loaded = method is None or isinstance(method, PrecomputedMethod)

        def ensure_loaded() -> None:
            nonlocal loaded
            if not loaded:
                load_method(method, runner.device, work.precision)
                loaded = True

        batch_size = self.batch_size or default_batch_size(runner.device)
        if method is not None and not method.batch_independent:
            batch_size = 1
        try:
            for group in work.groups:
                with runner.progress() as progress:
                    bar = progress.add_task(group.label, total=len(group.samples))
                    for image_id, result in measured_images(runner.work, method, group, runner.profiles, ensure_loaded,
                                                            batch_size=batch_size, depth=self.depth,
                                                            writers=writer_threads(runner.device)):
                        runner.commit(group, image_id, result, progress.console)
                        progress.advance(bar)
            if work.efficiency_size is not None:
                self._efficiency(work, runner, ensure_loaded)
        except MethodBroken as exc:
            runner.method_broken(work, exc.reason)

    def _efficiency(self, work: MethodWork, runner: Runner, ensure_loaded) -> None:
        from bench.metrics.efficiency import measure_efficiency

        width, height = work.efficiency_size
        try:
            ensure_loaded()
            with autocast(runner.device, work.precision):
                figures = measure_efficiency(work.method, runner.device, size=(height, width))
        except Exception as exc:
            runner.efficiency_failed(work, f"{type(exc).__name__}: {exc}")
            return
        runner.commit_efficiency(work, runner.device.type, figures)
