"""Metric metadata and the no-reference metric plugin API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

MetricKind = Literal["full-reference", "no-reference", "efficiency", "downstream"]


@dataclass(frozen=True)
class MetricInfo:
    """What a stored figure means: direction, range and unit (pyiqa-style metadata next to the name)."""

    name: str
    kind: MetricKind
    higher_better: bool
    description: str
    unit: str = ""
    score_range: tuple[float, float] | None = None
    decimals: int = 2  # digits shown in tables


class NoReferenceMetric:
    """A no-reference image-quality metric.

    Subclasses set ``info`` and ``implementation`` (named backend and model, stored with every figure)
    and implement :meth:`score`. :meth:`unavailable_reason` returns None when usable, else a message that
    names the missing file, where it comes from and where to put it.
    """

    info: ClassVar[MetricInfo]
    implementation: str = ""

    def unavailable_reason(self) -> str | None:
        return None

    def score(self, image: np.ndarray) -> float:
        """image: uint8 HxWx3 RGB (the method output quantised by rounding) -> score."""
        raise NotImplementedError
