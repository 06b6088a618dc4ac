"""Executors: where the per-image work of a run happens (an executor changes where work runs, never what is computed).

- ``local`` (default, bench/executors/local.py): this process, as a pipeline (inputs read ahead, batches of
  equal-size images through the network, outputs written and measured behind it).
- ``ray`` (bench/executors/ray_executor.py): Ray actors on this machine or on a cluster; an optional extra.

Both run the same per-image function (bench/runner/image_work.py) and hand every result back to the
runner, the only writer of the results store.
"""

from __future__ import annotations

from bench.config import Settings
from bench.errors import BadInputError

EXECUTORS = ("local", "ray")


def make_executor(settings: Settings):
    """The executor ``settings.executor`` names (``[run] executor`` in bench.toml, or ``--executor``)."""
    if settings.executor == "local":
        from bench.executors.local import LocalExecutor

        if settings.batch_size < 0 or settings.pipeline_depth < 0:
            raise BadInputError(f"batch size {settings.batch_size}, pipeline depth {settings.pipeline_depth}: give 0 or "
                                f"more (batch size 0: chosen per device; depth 0: one image at a time)")
        return LocalExecutor(settings.batch_size, settings.pipeline_depth)
    if settings.executor == "ray":
        from bench.executors.ray_cluster import import_ray
        from bench.executors.ray_executor import RayExecutor
        from bench.registry import loaded_plugin_files

        import_ray()  # not installed: say how, before any work
        if settings.workers < 0:
            raise BadInputError(f"--workers {settings.workers}: give a positive number, or 0 for one per CPU (or GPU)")
        if settings.gpus_per_worker is not None and settings.gpus_per_worker < 0:
            raise BadInputError(f"--gpus-per-worker {settings.gpus_per_worker:g}: give 0 or more (e.g. 1, or 0.5 to share a GPU)")
        return RayExecutor(settings, loaded_plugin_files())
    raise BadInputError(f"executor {settings.executor!r}: choose one of {', '.join(EXECUTORS)} "
                        f"(--executor, or [run] executor in bench.toml)")


def apply_executor_flags(settings: Settings, executor: str | None, ray_address: str | None, workers: int | None,
                         gpus_per_worker: float | None, no_shared_fs: bool, batch_size: int | None = None,
                         pipeline_depth: int | None = None) -> None:
    """Command-line flags over ``[run]`` in bench.toml; the Ray flags need the Ray executor, the pipeline's
    flags the local one (a Ray worker measures one image per call)."""
    if executor is not None:
        settings.executor = executor.strip().lower()
    ray_flags = [name for name, given in (("--ray-address", ray_address is not None), ("--workers", workers is not None),
                                          ("--gpus-per-worker", gpus_per_worker is not None),
                                          ("--no-shared-fs", no_shared_fs)) if given]
    if ray_flags and settings.executor != "ray":
        raise BadInputError(f"{', '.join(ray_flags)} only apply to --executor ray; add --executor ray "
                            f"(or set [run] executor = \"ray\" in bench.toml)")
    local_flags = [name for name, given in (("--batch-size", batch_size is not None),
                                            ("--pipeline-depth", pipeline_depth is not None)) if given]
    if local_flags and settings.executor != "local":
        raise BadInputError(f"{', '.join(local_flags)} only apply to --executor local (a Ray worker measures one image "
                            f"per call); leave them out, or run without --executor ray")
    if batch_size is not None:
        settings.batch_size = batch_size
    if pipeline_depth is not None:
        settings.pipeline_depth = pipeline_depth
    if ray_address is not None:
        settings.ray_address = ray_address
    if workers is not None:
        settings.workers = workers
    if gpus_per_worker is not None:
        settings.gpus_per_worker = gpus_per_worker
    if no_shared_fs:
        settings.shared_fs = False
