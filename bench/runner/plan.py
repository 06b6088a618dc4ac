"""What a run has to do, as planned by the runner and carried out by an executor (local or Ray)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.data.cards import Dataset
from bench.data.layouts import Sample
from bench.methods.api import DerainMethod
from bench.results.store import FP32, ResultKey


@dataclass
class ImageGroup:
    """The images of one (method and weights, dataset) still to measure."""

    key: ResultKey
    dataset: Dataset
    samples: list[Sample]
    label: str  # progress text, e.g. "sapnet on embedded-light"
    who: str  # what failure lines start with: the method spec, or "GT"
    reference_row: bool = False  # the GT row: task models on the clean targets, no deraining


@dataclass
class MethodWork:
    """One prepared method (None: the GT row) with its image groups, in the order they are run.
    efficiency_size: (width, height) of the efficiency measurement still to make, else None; precision: what
    its network runs in (bench/runner/precision.py)."""

    method: DerainMethod | None
    weights_hash: str
    groups: list[ImageGroup] = field(default_factory=list)
    efficiency_size: tuple[int, int] | None = None
    precision: str = FP32

    @property
    def spec(self) -> str:
        return self.method.spec if self.method is not None else "GT"

    @property
    def images(self) -> int:
        return sum(len(g.samples) for g in self.groups)
