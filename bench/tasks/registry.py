"""The task-model registry: entry points of the ``bench.task_models`` group (built-ins register the same way)."""

from __future__ import annotations

from bench.errors import BadInputError, UnknownNameError
from bench.registry import Registry
from bench.tasks.api import TASKS, TaskModel

TASK_MODELS: Registry = Registry("task-model", group="bench.task_models")

#: the task model used when ``--task-model`` and bench.toml name none
DEFAULT_TASK_MODELS = {"detection": "yolov5:yolov5n.pt", "segmentation": "espnet:cityscapes"}


def task_model_class(name: str) -> type[TaskModel]:
    obj = TASK_MODELS.load(name)
    if getattr(obj, "info", None) is None:
        raise BadInputError(f"task model {name!r} ({TASK_MODELS.entry(name).source}): the entry point does not "
                            f"provide a TaskModel with an `info` attribute; see bench/tasks/api.py")
    return obj


def create_task_model(spec: str) -> TaskModel:
    """Instantiate ``NAME[:VARIANT]`` (no weights loaded yet)."""
    name, _, variant = spec.strip().partition(":")
    if not name:
        raise BadInputError(f"task model spec {spec!r}: expected NAME or NAME:VARIANT (e.g. yolov5:yolov5n.pt)")
    cls = task_model_class(name)
    try:
        return cls(variant or None)
    except (BadInputError, UnknownNameError):
        raise
    except Exception as exc:
        raise BadInputError(f"task model {spec}: the plugin failed to initialise: {type(exc).__name__}: {exc}") from exc


def parse_tasks(value: str | None) -> list[str]:
    """``detection,segmentation`` -> the list, checked; empty or ``none`` -> []."""
    items = [t.strip() for t in (value or "").split(",") if t.strip() and t.strip() != "none"]
    unknown = [t for t in items if t not in TASKS]
    if unknown:
        raise BadInputError(f"--tasks {value}: unknown task(s) {', '.join(unknown)}; choose from {', '.join(TASKS)}")
    return items
