"""One row per entry for `bench list` and every detail of one entry for `bench info`.

A row has a short status: ``ready``, ``ready (shipped)``, ``download on first use``, ``weights missing``,
``checksum mismatch``, ``data missing``, ``generated on first use``, ``built on first use``,
``unavailable`` or ``plugin error``; ``hint`` is the next command to type.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bench.catalog.weights import MISMATCH, MISSING, file_state, variant_files
from bench.config import Settings
from bench.errors import BenchError
from bench.methods.api import PrecomputedMethod, canonical_spec

KINDS = ("methods", "datasets", "metrics", "task-models")


@dataclass
class Row:
    """One line of `bench list` (``detail``: year of a method or model, image count of a dataset)."""

    name: str
    kind: str
    detail: str
    status: str
    hint: str = ""
    reason: str = ""  # the full message behind a status other than ready (JSON only)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _weights_status(cls, variant: str, settings: Settings) -> tuple[str, list[dict]]:
    """(status, files) of one variant from its weights files' states."""
    files, states = [], []
    for wf in variant_files(cls, variant):
        path = settings.weights_dir / (wf.folder or cls.info.name) / wf.filename
        state = file_state(path, wf)
        states.append((state, wf))
        files.append({"file": wf.filename, "url": wf.url, "sha256": wf.sha256, "path": str(path), "state": state,
                      "how_to_get": wf.how_to_get})
    if any(s == MISMATCH for s, _ in states):
        return "checksum mismatch", files
    missing = [wf for s, wf in states if s == MISSING]
    if not missing:
        return "ready", files
    if settings.download and all(wf.url for wf in missing):
        return "download on first use", files
    return "weights missing", files


def _hint(status: str, spec: str, files: list[dict]) -> str:
    if status == "checksum mismatch":
        return f"bench weights fetch {spec}"
    if status in ("weights missing", "download on first use"):
        return f"bench weights fetch {spec}" if all(f["url"] for f in files if f["state"] != "present") \
            else f"bench info {spec}"
    return "" if status.startswith("ready") else f"bench info {spec}"


def _variant_row(cls, variant: str, settings: Settings, kind: str, make) -> Row:
    """make(cls, variant): the plugin instance, asked whether it can run here (a precomputed method whose
    outputs are absent reads ``data missing``)."""
    spec = canonical_spec(cls.info.name, variant)
    status, files = _weights_status(cls, variant, settings)
    reason, plugin = "", None
    if status == "ready":
        try:
            plugin = make(cls, variant)
            reason = plugin.unavailable_reason() or ""
        except BenchError as exc:
            reason = str(exc)
        except Exception as exc:  # noqa: BLE001 - a plugin that breaks while being listed
            status, reason = "plugin error", f"{type(exc).__name__}: {exc}"
        if reason and status == "ready":
            status = "data missing" if isinstance(plugin, PrecomputedMethod) else "unavailable"
        elif status == "ready" and getattr(cls.info.variants.get(variant), "packaged", False):
            status = "ready (shipped)"
    if not reason:
        reason = "; ".join(f"weights file {f['file']}: {f['state']} at {f['path']}" for f in files if f["state"] != "present")
    default = variant == cls.info.default_variant
    year = str(cls.info.year) if cls.info.year else "-"
    return Row(spec, kind, year, status, _hint(status, spec, files), reason,
               {"default": default and len(cls.info.variants) > 1, "files": files})


def _method(cls, variant: str, settings: Settings):
    method = cls(variant)
    method.data_root = settings.data_root
    return method


def method_variant_rows(cls, settings: Settings) -> list[Row]:
    """One row per variant of a method plugin class."""
    return [_variant_row(cls, variant, settings, cls.info.kind, lambda c, v: _method(c, v, settings))
            for variant in cls.info.variants]


def task_model_variant_rows(cls, settings: Settings) -> list[Row]:
    """One row per declared variant of a task-model plugin class (an open-variant model: its default)."""
    rows = []
    for variant in [cls.info.default_variant] if cls.info.open_variants else list(cls.info.variants):
        row = _variant_row(cls, variant, settings, cls.info.task, lambda c, v: c(v))
        row.extra.update(label_space=cls.info.label_space, open_variants=cls.info.open_variants)
        rows.append(row)
    return rows


def _plugin_rows(registry, loader, variant_rows, settings: Settings) -> list[Row]:
    rows = []
    for name in registry.names():
        try:
            cls = loader(name)
        except BenchError as exc:
            rows.append(Row(name, "?", "-", "plugin error", f"bench info {name}", str(exc)))
            continue
        rows += variant_rows(cls, settings)
    return rows


def method_rows(settings: Settings) -> list[Row]:
    from bench.methods.registry import METHODS, method_class

    return _plugin_rows(METHODS, method_class, method_variant_rows, settings)


def task_model_rows(settings: Settings) -> list[Row]:
    from bench.tasks.registry import TASK_MODELS, task_model_class

    return _plugin_rows(TASK_MODELS, task_model_class, task_model_variant_rows, settings)


def dataset_rows(settings: Settings) -> list[Row]:
    from bench.data.cards import availability, load_cards

    rows = []
    for name, card in load_cards(settings.cards_dir).items():
        reason = availability(card, settings)
        if card.embedded:
            status = "generated on first use"
        elif reason is not None:
            status = "data missing"
        elif card.derive:
            status = "built on first use"
        else:
            status = "ready"
        hint = "" if reason is None else (f"bench datasets fetch {name}" if card.fetch.get("url") else f"bench info {name}")
        rows.append(Row(name, card.category, str(card.expected_count), status, hint, reason or "",
                        {"title": card.title}))
    return rows


def metric_row(name: str) -> Row:
    """A metric's row (``detail``: which direction is better)."""
    from bench.metrics.registry import NO_REFERENCE_METRICS, metric_info, no_reference_metric

    try:
        info = metric_info(name)
    except BenchError as exc:
        return Row(name, "?", "-", "plugin error", f"bench info {name}", str(exc))
    status, reason, implementation = "ready", "", ""
    if name in NO_REFERENCE_METRICS:
        try:
            metric = no_reference_metric(name)
            reason, implementation = metric.unavailable_reason() or "", metric.implementation
        except BenchError as exc:
            reason = str(exc)
        status = "model missing" if reason else "ready"
    direction = "higher" if info.higher_better else "lower"
    return Row(name, info.kind, direction, status, f"bench info {name}" if reason else "", reason,
               {"description": info.description, "unit": info.unit, "implementation": implementation})


def metric_rows() -> list[Row]:
    from bench.metrics.registry import METRICS

    return [metric_row(name) for name in METRICS.names()]


def rows_of(kind: str, settings: Settings) -> list[Row]:
    """The rows of ``bench list KIND``."""
    return {"methods": lambda: method_rows(settings), "datasets": lambda: dataset_rows(settings),
            "metrics": metric_rows, "task-models": lambda: task_model_rows(settings)}[kind]()
