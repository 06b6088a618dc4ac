"""Everything about one entry (`bench info NAME`): paper, variants, weights files with URL, sha256 and local
state, and how to obtain what is missing. NAME may be a method or task model (with or without a variant),
a dataset or a metric; a name used by several kinds (``moss``) describes each."""

from __future__ import annotations

from typing import Any

from bench.catalog.entries import dataset_rows, method_variant_rows, metric_row, task_model_variant_rows
from bench.config import Settings
from bench.errors import BenchError, UnknownNameError


def _obtain(files: list[dict], spec: str) -> list[str]:
    """How to get each file that is not present (one line each)."""
    steps = []
    for f in files:
        if f["state"] == "present":
            continue
        folder = f["path"].rsplit("/", 1)[0]
        if f["url"]:
            steps.append(f"{f['file']}: `bench weights fetch {spec}` (downloads {f['url']} and checks its sha256), "
                         f"or download it by hand into {folder}/")
        else:
            steps.append(f"{f['file']}: no direct download. {f['how_to_get']} Put it in {folder}/.".replace("..", "."))
    return steps


def _plugin(cls, rows, kind: str, variant: str | None) -> dict[str, Any]:
    info = cls.info
    variants = []
    for row in rows:
        name, _, var = row.name.partition(":")
        var = var or "default"
        if name != info.name or (variant is not None and var != variant):
            continue
        declared = info.variants.get(var)
        variants.append({
            "spec": row.name, "default": var == info.default_variant, "status": row.status, "reason": row.reason,
            "description": getattr(declared, "description", ""), "trained_on": getattr(declared, "trained_on", ""),
            "note": getattr(declared, "note", ""), "shipped": bool(getattr(declared, "packaged", False)),
            "weights": row.extra.get("files", []), "obtain": _obtain(row.extra.get("files", []), row.name)})
    out = {"kind": kind, "name": info.name, "label": info.label, "paper": info.paper, "year": info.year,
           "description": info.description, "code_url": info.code_url, "default_variant": info.default_variant,
           "variants": variants}
    if kind == "method":
        out["method_kind"] = info.kind
    else:
        out.update(task=info.task, label_space=info.label_space, preprocessing=info.preprocessing,
                   licence=info.licence, open_variants=info.open_variants)
    return out


def describe(name: str, settings: Settings) -> list[dict[str, Any]]:
    """Every entry called ``name`` (method, task model, dataset, metric), as plain data."""
    from bench.methods.registry import METHODS, method_class
    from bench.tasks.registry import TASK_MODELS, task_model_class

    base, _, variant = name.partition(":")
    found: list[dict[str, Any]] = []
    for registry, loader, kind, rows in ((METHODS, method_class, "method", method_variant_rows),
                                         (TASK_MODELS, task_model_class, "task model", task_model_variant_rows)):
        if base in registry:
            try:
                cls = loader(base)
            except BenchError as exc:
                found.append({"kind": kind, "name": base, "status": "plugin error", "reason": str(exc)})
                continue
            if variant and variant not in cls.info.variants and not getattr(cls.info, "open_variants", False):
                raise UnknownNameError(f"{kind} {base}: unknown variant {variant!r}; known: "
                                       f"{', '.join(cls.info.variants)}")
            found.append(_plugin(cls, rows(cls, settings), kind, variant or None))
    if not variant:
        from bench.data.cards import load_cards

        cards = load_cards(settings.cards_dir)
        if base in cards:
            card, row = cards[base], next(r for r in dataset_rows(settings) if r.name == base)
            found.append({"kind": "dataset", "name": base, "title": card.title, "category": card.category,
                          "images": card.expected_count, "paper": card.paper, "source_url": card.source_url,
                          "notes": " ".join(card.notes.split()), "folders": [str(settings.data_root / f) for f in card.folders],
                          "layouts": list(card.layouts), "status": row.status, "reason": row.reason,
                          "obtain": [] if row.status != "data missing" else [
                              f"`bench datasets fetch {base}`" if card.fetch.get("url") else
                              " ".join(str(card.fetch.get("how_to_get") or card.source_url).split())]})
        if base in _metric_names():
            row = metric_row(base)
            found.append({"kind": "metric", "name": base, "metric_kind": row.kind, "better": row.detail,
                          "status": row.status, "reason": row.reason, **row.extra})
    if not found:
        raise UnknownNameError(f"bench info {name}: no method, task model, dataset or metric of that name; "
                               f"`bench list methods|datasets|metrics|task-models` shows every name")
    return found


def _metric_names() -> list[str]:
    from bench.metrics.registry import METRICS

    return METRICS.names()
