"""The local executor (the default): every image in this process, one after the other, in the planned order."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import torch

from bench.methods.api import PrecomputedMethod
from bench.runner.image_work import MethodBroken, pick_device
from bench.runner.plan import MethodWork

if TYPE_CHECKING:
    from bench.runner.runner import Runner


class LocalExecutor:
    name = "local"

    def __init__(self) -> None:
        self.workers = 1
        self.nodes: set[str] = set()

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
                method.load(runner.device)
                loaded = True

        try:
            for group in work.groups:
                with runner.progress() as progress:
                    bar = progress.add_task(group.label, total=len(group.samples))
                    for sample in group.samples:
                        if group.reference_row:
                            result = runner.work.reference(group.key, group.dataset, sample)
                        else:
                            result = runner.work.measure(method, group.key, group.dataset, sample, runner.profiles,
                                                         ensure_loaded)
                        runner.commit(group, sample.image_id, result, progress.console)
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
            figures = measure_efficiency(work.method, runner.device, size=(height, width))
        except Exception as exc:
            runner.efficiency_failed(work, f"{type(exc).__name__}: {exc}")
            return
        runner.commit_efficiency(work, runner.device.type, figures)
