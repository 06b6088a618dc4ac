"""Label spaces (class names, ignore index, palette) and declared mappings between them.

The data lives in ``label_spaces.toml`` beside this file; a mapping is applied as a lookup table from
source ids to target ids, with unmapped classes sent to the target's ignore index.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import BadInputError, UnknownNameError

_DATA = Path(__file__).with_name("label_spaces.toml")
#: label value of "the model predicted no class here" in a mapped prediction (never a real class id)
NO_CLASS = 255


@dataclass(frozen=True)
class LabelSpace:
    name: str
    title: str
    names: tuple[str, ...]
    ignore_index: int | None = None
    palette: tuple[tuple[int, int, int], ...] = ()
    source: str = ""
    label_ids: tuple[int, ...] = ()  # raw dataset ids of each class, where the release stores other ids

    def from_label_ids(self) -> np.ndarray:
        """uint8 lookup table 256 -> class id (ignore index for ids of no class), for ``label_ids`` releases."""
        table = np.full(256, self.ignore_index if self.ignore_index is not None else NO_CLASS, dtype=np.uint8)
        for class_id, raw_id in enumerate(self.label_ids):
            table[raw_id] = class_id
        return table

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def colour(self, class_id: int) -> tuple[int, int, int]:
        """RGB colour of ``class_id`` (a fixed hashed colour when the space has no palette)."""
        if 0 <= class_id < len(self.palette):
            return self.palette[class_id]
        rng = np.random.default_rng(class_id + 17)
        return tuple(int(v) for v in rng.integers(64, 256, 3))


@dataclass(frozen=True)
class LabelMapping:
    source: str
    target: str
    title: str
    table: np.ndarray  # int64, source id -> target id (target ignore / NO_CLASS when unmapped)
    pairs: tuple[tuple[str, str], ...]

    def apply(self, ids: np.ndarray) -> np.ndarray:
        """Map source class ids (any shape; values outside the space pass through as NO_CLASS)."""
        ids = np.asarray(ids, dtype=np.int64)
        out = np.full(ids.shape, NO_CLASS, dtype=np.int64)
        valid = (ids >= 0) & (ids < len(self.table))
        out[valid] = self.table[ids[valid]]
        return out

    def describe(self) -> str:
        groups: dict[str, list[str]] = {}
        for src, dst in self.pairs:
            groups.setdefault(dst, []).append(src)
        return "; ".join(f"{'+'.join(srcs)}->{dst}" for dst, srcs in groups.items())


@functools.cache
def _raw() -> dict:
    return tomllib.loads(_DATA.read_text())


def label_space(name: str) -> LabelSpace:
    spaces = _raw()["spaces"]
    if name not in spaces:
        raise UnknownNameError(f"unknown label space {name!r}; known: {', '.join(sorted(spaces))} "
                               f"(declared in {_DATA})")
    raw = spaces[name]
    return LabelSpace(name, raw.get("title", name), tuple(raw["names"]), raw.get("ignore_index"),
                      tuple(tuple(c) for c in raw.get("palette", [])), raw.get("source", ""),
                      tuple(raw.get("label_ids", [])))


def label_mapping(source: str, target: str) -> LabelMapping | None:
    """The mapping ``source`` -> ``target``: identity when equal, the declared one, else None."""
    src, dst = label_space(source), label_space(target)
    if source == target:
        return LabelMapping(source, target, "identity", np.arange(src.num_classes, dtype=np.int64),
                            tuple((n, n) for n in src.names))
    raw = _raw().get("mappings", {}).get(f"{source}->{target}")
    if raw is None:
        return None
    unmapped = dst.ignore_index if dst.ignore_index is not None else NO_CLASS
    table = np.full(src.num_classes, unmapped, dtype=np.int64)
    pairs = []
    for src_name, dst_name in raw.items():
        if src_name == "title":
            continue
        if src_name not in src.names or dst_name not in dst.names:
            raise BadInputError(f"{_DATA}: mapping {source}->{target} names {src_name!r}->{dst_name!r}, "
                                f"which is not a class of {source if src_name not in src.names else target}")
        table[src.names.index(src_name)] = dst.names.index(dst_name)
        pairs.append((src_name, dst_name))
    return LabelMapping(source, target, raw.get("title", f"{source} to {target}"), table, tuple(pairs))


def require_mapping(source: str, target: str, owner: str) -> LabelMapping:
    mapping = label_mapping(source, target)
    if mapping is None:
        raise BadInputError(f"{owner}: predicts {source} classes but the dataset's labels are {target}, and no "
                            f"mapping {source}->{target} is declared in {_DATA}; choose a task model for {target} "
                            f"or declare the mapping")
    return mapping
