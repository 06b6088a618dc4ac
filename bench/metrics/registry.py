"""The metric registry: metadata for every stored figure, and lazy no-reference metric plugins."""

from __future__ import annotations

from bench.metrics.api import MetricInfo, NoReferenceMetric
from bench.metrics.no_reference import NO_REFERENCE_TARGETS, register_no_reference_metrics
from bench.registry import Registry

METRICS: Registry = Registry("metric", group="bench.metrics")

_BUILTIN = [
    MetricInfo("psnr", "full-reference", True, "peak signal-to-noise ratio under the table's profile", "dB", (0, 100)),
    MetricInfo("ssim", "full-reference", True, "structural similarity (Wang et al.) under the table's profile", "",
               (0, 1), decimals=4),
    MetricInfo("time_ms", "efficiency", False, "wall time of the method per image as run (ms)", "ms", (0, None), 0),
    MetricInfo("params", "efficiency", False, "trainable parameters", "", (0, None), 0),
    MetricInfo("flops", "efficiency", False, "floating-point operations per image at the stated size (GFLOPs)",
               "GFLOPs", (0, None), 2),
    MetricInfo("ms_per_image", "efficiency", False, "median inference time per image after warm-up", "ms",
               (0, None), 1),
    MetricInfo("peak_memory_mb", "efficiency", False, "peak memory during inference", "MB", (0, None), 0),
    MetricInfo("input_height", "efficiency", False, "height of the efficiency measurement's input", "px", None, 0),
    MetricInfo("input_width", "efficiency", False, "width of the efficiency measurement's input", "px", None, 0),
]
for _info in _BUILTIN:
    METRICS.register(_info.name, _info, description=_info.description)

register_no_reference_metrics(METRICS)
NO_REFERENCE_METRICS = tuple(NO_REFERENCE_TARGETS)


def metric_info(name: str) -> MetricInfo:
    """Metadata (direction, unit, range) of a stored metric name."""
    obj = METRICS.load(name)
    return obj if isinstance(obj, MetricInfo) else obj.info


def no_reference_metric(name: str) -> NoReferenceMetric:
    """An instance of the no-reference metric ``name``."""
    cls = METRICS.load(name)
    return cls()
