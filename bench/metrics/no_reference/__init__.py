"""No-reference image-quality metrics: BRISQUE, NIQE, PIQE and UNIQUE.

Each metric names its backend and model in ``implementation``; nothing is downloaded while scoring.
The official BRISQUE and NIQE model files are installed with ``python -m bench.metrics.no_reference.models``.
"""

from __future__ import annotations

from typing import Any

NO_REFERENCE_TARGETS: dict[str, str] = {
    "brisque": "bench.metrics.no_reference.brisque:BRISQUE",
    "niqe": "bench.metrics.no_reference.niqe:NIQE",
    "piqe": "bench.metrics.no_reference.piqe:PIQE",
    "unique": "bench.metrics.no_reference.unique:UNIQUE",
}


def register_no_reference_metrics(registry: Any) -> None:
    """Register "brisque", "niqe", "piqe" and "unique" in ``registry`` as lazy "module:Class" targets."""
    for name, target in NO_REFERENCE_TARGETS.items():
        registry.register(name, target, description="no-reference image quality")
