"""Folder layouts of paired and unpaired datasets. Pairing is by stem rules, never by sorted position."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.images import list_images


@dataclass(frozen=True)
class Sample:
    """One evaluation item: a rainy input and, for paired sets, its clean target (None if unpaired)."""

    image_id: str
    input: Path
    target: Path | None = None
    missing_target: Path | None = None  # paired layout, partner absent: where it was expected


@dataclass
class LayoutMatch:
    layout: str
    samples: list[Sample]
    problems: list[str] = field(default_factory=list)  # e.g. targets without an input


def _natural_key(stem: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", stem))


def _by_stem(paths: list[Path], pattern: re.Pattern[str] | None = None) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in paths:
        if pattern is None:
            out[p.stem] = p
        elif (m := pattern.fullmatch(p.stem)) is not None:
            out[m.group("id")] = p
    return out


def _pair(inputs: dict[str, Path], targets: dict[str, Path], target_dir: Path, layout: str,
          target_name: Callable[[str, Path], str]) -> LayoutMatch:
    samples = []
    for image_id in sorted(inputs, key=_natural_key):
        target = targets.get(image_id)
        expected = None if target else target_dir / target_name(image_id, inputs[image_id])
        samples.append(Sample(image_id, inputs[image_id], target, expected))
    problems = [f"{targets[i]}: target without a rainy input (expected an input with id {i!r})"
                for i in sorted(set(targets) - set(inputs), key=_natural_key)]
    return LayoutMatch(layout, samples, problems)


def input_target(root: Path) -> LayoutMatch | None:
    """``input/`` and ``target/`` folders with equal stems (any image extension)."""
    if not (root / "input").is_dir() or not (root / "target").is_dir():
        return None
    inputs, targets = _by_stem(list_images(root / "input")), _by_stem(list_images(root / "target"))
    return _pair(inputs, targets, root / "target", "input-target", lambda i, p: f"{i}{p.suffix}")


_RAIN = re.compile(r"rain-(?P<id>\d+)")
_NORAIN = re.compile(r"norain-(?P<id>\d+)")


def prenet(root: Path) -> LayoutMatch | None:
    """PReNet's test layout: ``rain-NNN.png`` and ``norain-NNN.png`` in one folder."""
    if not root.is_dir():
        return None
    files = list_images(root)
    inputs, targets = _by_stem(files, _RAIN), _by_stem(files, _NORAIN)
    if not inputs:
        return None
    return _pair(inputs, targets, root, "prenet", lambda i, p: f"norain-{i}{p.suffix}")


_X2 = re.compile(r"norain-(?P<id>\d+)x2")


def rain100_original(root: Path) -> LayoutMatch | None:
    """The original Rain100L/H release: ``rain/X2/norain-NNNx2.png`` with ``norain/norain-NNN.png``."""
    if not (root / "rain" / "X2").is_dir() or not (root / "norain").is_dir():
        return None
    inputs = _by_stem(list_images(root / "rain" / "X2"), _X2)
    targets = _by_stem(list_images(root / "norain"), _NORAIN)
    return _pair(inputs, targets, root / "norain", "rain100-original", lambda i, p: f"norain-{i}{p.suffix}")


def flat(root: Path) -> LayoutMatch | None:
    """A folder of real rainy images without ground truth (``input/`` inside it is also accepted)."""
    folder = root / "input" if (root / "input").is_dir() else root
    if not folder.is_dir():
        return None
    files = list_images(folder)
    if not files:
        return None
    samples = [Sample(p.stem, p) for p in sorted(files, key=lambda p: _natural_key(p.stem))]
    return LayoutMatch("flat", samples)


LAYOUTS: dict[str, Callable[[Path], LayoutMatch | None]] = {
    "input-target": input_target,
    "prenet": prenet,
    "rain100-original": rain100_original,
    "flat": flat,
}

LAYOUT_HELP = {
    "input-target": "input/*.png and target/*.png with equal stems",
    "prenet": "rain-NNN.png and norain-NNN.png in one folder",
    "rain100-original": "rain/X2/norain-NNNx2.png and norain/norain-NNN.png",
    "flat": "a folder of rainy images",
}


def detect_layout(root: Path, layouts: list[str]) -> LayoutMatch | None:
    """Try ``layouts`` in order and return the first that finds samples."""
    for name in layouts:
        match = LAYOUTS[name](root)
        if match is not None and match.samples:
            return match
    return None
