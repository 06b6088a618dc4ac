"""The Ray executor: the same per-image work, on Ray actors on this machine or across a cluster.

Each actor is one worker process (``threads`` torch threads, ``gpus_per_worker`` GPUs) that keeps one
loaded method for as long as it is given images of that method. The driver (this process) hands each
idle worker a shard of a few images of one (method and weights, dataset), preferring the method the worker
already holds, and commits every image to the results store as its result arrives: it stays the only
writer of the store. A worker process that dies (crash, OOM, lost node) is replaced and its unfinished
images are given to another; the image it was working on is retried at most MAX_ATTEMPTS times, then
stored as a failure. Ray is imported in bench/executors/ only, so `bench list` and local runs never load it.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from bench.errors import BenchError
from bench.executors.ray_cluster import connect, describe_resources, disconnect, worker_shape
from bench.executors.worker import ImageTask, ImageWorker, JobDesc, MethodDesc, Reply
from bench.runner.image_work import ImageFailure, ImageResult
from bench.runner.plan import ImageGroup, MethodWork

if TYPE_CHECKING:
    from bench.config import Settings
    from bench.runner.runner import Runner

#: images queued on one worker at a time: one being measured, one waiting (hides the round trip)
SHARD_IMAGES = 2
#: a worker that dies while measuring an image: that image is tried at most this often, then stored as failed
MAX_ATTEMPTS = 3
#: seconds between checks for Ctrl-C while waiting for results
POLL_S = 0.5
#: say so when some workers have not started after this many seconds (the cluster lacks the resources)
WAIT_WARNING_S = 120

@dataclass
class _Item:
    work: MethodWork
    group: ImageGroup
    index: int  # position of the sample in its group
    attempts: int = 0

    @property
    def image_id(self) -> str:
        return self.group.samples[self.index].image_id


@dataclass
class _Slot:
    """One actor and what the driver knows about it."""

    actor: object
    ready: bool = False
    work: MethodWork | None = None  # the method it holds (or was last given)
    inflight: deque = field(default_factory=deque)  # (ref, item), in submission order


class RayExecutor:
    name = "ray"

    def __init__(self, settings: Settings, plugin_files: list[Path]) -> None:
        self.settings = settings
        self.plugin_files = list(plugin_files)
        self.address = settings.ray_address
        self.threads = settings.threads if settings.threads > 0 else 1
        self.gpus_per_worker = settings.gpus_per_worker
        self.workers = settings.workers
        self.nodes: set[str] = set()
        self.shared_fs = settings.shared_fs
        self._ray = None
        self._started_here = False
        self._slots: list[_Slot] = []
        self._replacements_left = 0
        self._finished = False

    # set-up ---------------------------------------------------------------------------------------
    def driver_device(self, name: str) -> torch.device:
        """Where the driver loads task models to check them while planning (the workers use their own device)."""
        if name == "cuda" and not torch.cuda.is_available():
            return torch.device("cpu")
        from bench.runner.image_work import pick_device

        return pick_device(name)

    def device_type(self, device: torch.device) -> str:
        return "cuda" if self.gpus_per_worker else "cpu"

    def device_label(self, device: torch.device) -> str:
        return f"{self.device_type(device)} (ray workers)"

    def start(self) -> None:
        """Join the cluster at the address, or start Ray on this machine; fix the workers' shape and number."""
        self._ray, self._started_here = connect(self.address, self.workers * self.threads)
        self.gpus_per_worker, self.workers = worker_shape(self._ray, self.settings, self.threads)
        self._replacements_left = 2 * self.workers + MAX_ATTEMPTS

    def stop(self) -> None:
        """Kill this job's workers; shut Ray down if this command started it (a cluster keeps running)."""
        ray = self._ray
        if ray is None:
            return
        closing = [slot.actor.close.remote() for slot in self._slots if slot.ready] if self._finished else []
        if closing:  # the workers remove their scratch folders (not after Ctrl-C: then they stop at once)
            ray.wait(closing, num_returns=len(closing), timeout=10)
        for slot in self._slots:
            try:
                ray.kill(slot.actor, no_restart=True)
            except Exception:  # already gone
                pass
        self._slots = []
        disconnect(ray, self._started_here)
        self._ray, self._started_here = None, False

    # the job --------------------------------------------------------------------------------------
    def run(self, plan: list[MethodWork], runner: Runner) -> None:
        self.runner = runner
        ray = self._ray
        pending = {id(w): deque(_Item(w, g, i) for g in w.groups for i in range(len(g.samples))) for w in plan}
        images = sum(len(q) for q in pending.values())
        efficiency = [w for w in plan if w.efficiency_size is not None]
        count = min(self.workers, images) or (1 if efficiency else 0)
        if not count:
            return
        self._actor_class = ray.remote(ImageWorker)
        self._slots = [_Slot(self._new_actor()) for _ in range(count)]
        self.workers = count
        self._refs: dict = {}  # ref -> (kind, slot, item)
        for slot in self._slots:
            self._refs[slot.actor.info.remote()] = ("info", slot, None)
        self._broken: set[int] = set()
        self._plan = plan
        self._pending = pending
        self._job_descs = {name: tuple(JobDesc.of(j) for j in jobs) for name, jobs in runner.jobs.items()}
        self._nr_names: tuple[str, ...] | None = None
        self._since, self._warned = time.monotonic(), False
        with runner.progress() as progress:
            self._progress = progress
            self._overall = progress.add_task(f"all images ({count} Ray workers)", total=images)
            self._bars = {id(g): progress.add_task(g.label, total=len(g.samples)) for w in plan for g in w.groups}
            while self._images_left():
                for slot in list(self._slots):
                    self._fill(slot)
                self._wait_one()
            for work in efficiency:
                if id(work) not in self._broken:
                    self._efficiency(work)
        self._finished = True

    def _images_left(self) -> bool:
        return (any(q for key, q in self._pending.items() if key not in self._broken)
                or any(kind == "image" for kind, _, _ in self._refs.values()))

    def _new_actor(self):
        options = dict(num_cpus=self.threads, num_gpus=self.gpus_per_worker or 0, max_restarts=0, max_task_retries=0,
                       scheduling_strategy="SPREAD")
        return self._actor_class.options(**options).remote(self.settings, self.plugin_files, self.threads, self.shared_fs)

    def _wait_one(self) -> None:
        ray = self._ray
        if not self._refs:
            raise BenchError("every Ray worker is gone and images remain; see the worker logs (ray logs, or "
                             "/tmp/ray/session_latest/logs on each node)")
        done, _ = ray.wait(list(self._refs), num_returns=1, timeout=POLL_S)
        waiting = sum(1 for s in self._slots if not s.ready)
        if waiting and not self._warned and time.monotonic() - self._since > WAIT_WARNING_S:
            self._warned = True
            self._progress.console.print(
                f"[yellow]{waiting} of {len(self._slots)} Ray workers have not started after {WAIT_WARNING_S} s: each "
                f"asks for {self.threads} CPU(s) and {self.gpus_per_worker or 0:g} GPU(s) and the cluster has "
                f"{describe_resources(ray)}; lower --workers, or add nodes[/yellow]")
        for ref in done:
            if ref in self._refs:
                self._handle(ref)

    # dispatch -------------------------------------------------------------------------------------
    def _fill(self, slot: _Slot) -> None:
        while slot.ready and len(slot.inflight) < SHARD_IMAGES:
            item = self._next_item(slot)
            if item is None:
                return
            ref = slot.actor.measure.remote(self._task(item))
            slot.inflight.append((ref, item))
            self._refs[ref] = ("image", slot, item)

    def _next_item(self, slot: _Slot) -> _Item | None:
        """The GT row first; else more of the method the worker holds; else the method with the most
        images per worker already on it."""
        live = [w for w in self._plan if self._pending[id(w)] and id(w) not in self._broken]
        if not live:
            return None
        first = live[0]
        if first.method is None:
            chosen = first
        elif any(w is slot.work for w in live):
            chosen = slot.work
        else:
            def share(work: MethodWork) -> float:
                holders = sum(1 for s in self._slots if s.work is work)
                return len(self._pending[id(work)]) / (1 + holders)

            chosen = max(live, key=share)
        if chosen.method is not None:
            slot.work = chosen
        return self._pending[id(chosen)].popleft()

    def _task(self, item: _Item) -> ImageTask:
        group, work = item.group, item.work
        dataset = group.dataset
        jobs = self._job_descs.get(dataset.name, ())
        references = {}
        for job in jobs:
            if job.reference == "pseudo":
                stored = self.runner.store.task_reference(dataset.name, item.image_id, job.model_id, job.reference)
                if stored is not None:
                    references[(job.model_id, job.reference)] = stored
        nr = ()
        if not dataset.card.paired and work.method is not None:
            if self._nr_names is None:
                self._nr_names = tuple(m.info.name for m in self.runner.available_nr_metrics())
            nr = self._nr_names
        method = MethodDesc.of(work.method, work.precision) if work.method is not None else None
        return ImageTask(method, group.key, dataset.name, item.image_id, tuple(self.runner.profiles), jobs, nr, references)

    # results --------------------------------------------------------------------------------------
    def _handle(self, ref) -> None:
        ray = self._ray
        kind, slot, item = self._refs.pop(ref)
        try:
            reply = ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            self._refs[ref] = (kind, slot, item)  # the death handler takes every ref of this worker
            self._worker_died(slot, exc)
            return
        if kind == "info":
            self._started(slot, reply)
            return
        slot.inflight = deque(entry for entry in slot.inflight if entry[0] != ref)
        self._apply(item, reply)

    def _started(self, slot: _Slot, info: dict) -> None:
        from bench.runner.provenance import package_versions

        if info["error"]:
            raise BenchError(info["error"])
        mine, theirs = package_versions(), info["versions"]
        differ = [f"{name} {theirs.get(name, 'missing')} (driver: {version})" for name, version in mine.items()
                  if name in ("derain-bench", "torch", "torchvision", "numpy", "python") and theirs.get(name) != version]
        if differ:
            raise BenchError(f"the worker on {info['node']} has {', '.join(differ)}; install the same versions on every "
                             f"node, so that every image is measured the same way")
        slot.ready = True

    def _apply(self, item: _Item, reply: Reply) -> None:
        runner, work = self.runner, item.work
        if reply.error:
            raise BenchError(reply.error) if reply.bench_error else RuntimeError(reply.error)
        if reply.broken is not None:
            if id(work) not in self._broken:
                self._broken.add(id(work))
                self._pending[id(work)].clear()
                runner.method_broken(work, reply.broken)
            return
        if id(work) in self._broken:
            return
        if reply.node:
            self.nodes.add(reply.node)
        self._write_files(reply.files)
        runner.commit(item.group, item.image_id, reply.result, self._progress.console)
        self._progress.advance(self._bars[id(item.group)])
        self._progress.advance(self._overall)

    def _write_files(self, files: dict[str, bytes]) -> None:
        """Outputs shipped back by a worker without a shared filesystem, written atomically under the output folder."""
        root = self.settings.outputs_dir
        for relative, data in files.items():
            path = root / relative
            if Path(relative).is_absolute() or ".." in Path(relative).parts:
                raise BenchError(f"a worker sent back a file outside the output folder: {relative}")
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
            tmp.write_bytes(data)
            os.replace(tmp, path)

    def _worker_died(self, slot: _Slot, exc: Exception) -> None:
        """Commit what the worker finished, retry the rest elsewhere (the image it was on counts an attempt), replace it."""
        ray = self._ray
        charged = False
        for ref, item in list(slot.inflight):
            self._refs.pop(ref, None)
            reply = None
            if ray.wait([ref], timeout=0)[0]:
                try:
                    reply = ray.get(ref)
                except Exception:  # it died with the worker
                    reply = None
            if reply is not None:
                self._apply(item, reply)
                continue
            if not charged:  # actor tasks run in order: the first unfinished one was running when it died
                charged = True
                item.attempts += 1
                if item.attempts >= MAX_ATTEMPTS:
                    reason = (f"the worker process died {item.attempts} times while measuring this image "
                              f"(last: {_first_line(exc)}); see the worker logs on the node")
                    self._apply(item, Reply("", ImageResult(failure=ImageFailure("worker", item.group.samples[item.index].input,
                                                                                 reason))))
                    continue
            if id(item.work) not in self._broken:
                self._pending[id(item.work)].appendleft(item)
        for ref, (_kind, owner, _item) in list(self._refs.items()):
            if owner is slot:
                self._refs.pop(ref)
        slot.inflight.clear()
        self._progress.console.print(f"[yellow]a Ray worker died ({_first_line(exc)}); its unfinished images go to "
                                     f"another worker[/yellow]")
        self._replace(slot)

    def _replace(self, slot: _Slot) -> None:
        try:
            self._ray.kill(slot.actor, no_restart=True)
        except Exception:
            pass
        if self._replacements_left <= 0:
            self._slots.remove(slot)
            if not self._slots:
                raise BenchError("Ray workers kept dying (more than the retries allow); see the worker logs "
                                 "(/tmp/ray/session_latest/logs on each node)")
            return
        self._replacements_left -= 1
        slot.actor, slot.ready, slot.work = self._new_actor(), False, None
        self._refs[slot.actor.info.remote()] = ("info", slot, None)

    # efficiency, after the images, one method at a time (so that the timing is not shared) --------------
    def _efficiency(self, work: MethodWork) -> None:
        ray, runner = self._ray, self.runner
        for _attempt in range(MAX_ATTEMPTS):
            while not any(s.ready for s in self._slots):
                self._wait_one()
            slot = next((s for s in self._slots if s.ready and s.work is work), None) or next(s for s in self._slots if s.ready)
            ref = slot.actor.efficiency.remote(MethodDesc.of(work.method, work.precision), work.efficiency_size)
            while True:
                done, _ = ray.wait([ref], timeout=POLL_S)
                if done:
                    break
            try:
                reply = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                self._worker_died(slot, exc)
                continue
            slot.work = work
            if reply.error:
                runner.efficiency_failed(work, reply.error)
            else:
                self.nodes.add(reply.node)
                runner.commit_efficiency(work, reply.device_type, reply.figures)
            return
        runner.efficiency_failed(work, "the worker died each time")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
