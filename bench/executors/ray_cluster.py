"""Reaching Ray: start it on this machine or join a cluster, size the workers, and leave (Ray is imported here)."""

from __future__ import annotations

import logging
import os

from bench.config import Settings
from bench.errors import BadInputError

INSTALL_HINT = "pip install -e '.[ray]' (in a checkout) or pip install 'ray>=2.9,<3'"


def import_ray():
    try:
        import ray
    except ImportError as exc:
        raise BadInputError(f"--executor ray needs Ray, which is not installed here ({exc}); install it with "
                            f"{INSTALL_HINT}, or use --executor local") from None
    return ray


def connect(address: str, cpus_wanted: int):
    """(ray, started_here): the running Ray of this process, the cluster at ``address``, or a new Ray on this
    machine with at least ``cpus_wanted`` CPUs (so that every requested worker starts)."""
    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    options = dict(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    if address:
        try:
            ray.init(address=address, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            raise BadInputError(f"--ray-address {address}: no Ray cluster reached ({lines[0]}); start one with "
                                f"`ray start --head` (README, Running on a cluster), or drop --ray-address to start "
                                f"Ray on this machine. A cluster with token authentication needs its token here "
                                f"(~/.ray/auth_token from the head node) and, with HOST:PORT, RAY_AUTH_MODE=token") from None
    else:
        # workers at the priority of a local run (Ray's default nice 15 starves them on a shared machine)
        os.environ.setdefault("RAY_worker_niceness", "0")
        # "local": a new Ray on this machine, even where `ray start` runs one (that one is --ray-address auto)
        ray.init(address="local", num_cpus=max(os.cpu_count() or 1, cpus_wanted), **options)
    return ray, True


def worker_shape(ray, settings: Settings, threads: int) -> tuple[float, int]:
    """(GPUs per worker, number of workers) from the settings and the cluster's resources, checked."""
    resources = ray.cluster_resources()
    cpus, gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
    per_worker = settings.gpus_per_worker
    if per_worker is None:
        per_worker = 1.0 if gpus >= 1 and settings.device != "cpu" else 0.0
    if per_worker > 0 and gpus < per_worker:
        raise BadInputError(f"--gpus-per-worker {per_worker:g}: the Ray cluster has {gpus:g} GPU(s); use "
                            f"--gpus-per-worker 0 (CPU workers) or join a cluster with GPUs (--ray-address)")
    if settings.device == "cuda" and per_worker == 0:
        raise BadInputError("--device cuda with --executor ray: give each worker a GPU with --gpus-per-worker "
                            "(e.g. 1, or 0.5 for two workers per GPU)")
    if per_worker > 0 and settings.device == "cpu":
        raise BadInputError("--device cpu with --gpus-per-worker: drop one of them")
    workers = settings.workers or (int(gpus // per_worker) if per_worker else int(cpus // threads))
    return per_worker, max(1, workers)


def describe_resources(ray) -> str:
    total = ray.cluster_resources()
    return f"{total.get('CPU', 0):g} CPU(s) and {total.get('GPU', 0):g} GPU(s) in all"


def disconnect(ray, started_here: bool) -> None:
    """Shut Ray down if this command started it; a cluster (or a caller's Ray) keeps running."""
    if started_here and ray.is_initialized():
        ray.shutdown()
