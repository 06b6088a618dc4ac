"""Training data: random patches from paired folders or from clean photographs with fresh synthetic rain.

Sources:
- :class:`PairedImages`: a folder with ``input/`` and ``target/`` holding images with equal stems, or
  PReNet's flat layout ``rain-NNN.png`` + ``norain-NNN.png`` in one folder.
- :class:`SynthRainImages`: a folder of clean photographs; every patch gets newly drawn rain from
  :func:`bench.data.synth.synthesize_rain`, so no two epochs see the same rain.

:class:`PatchSampler` draws batches of random ``patch x patch`` crops with random horizontal and vertical
flips, from a :class:`numpy.random.Generator` whose state is saved in checkpoints (exact resume).
Tensors are float32 Bx3xPxP RGB in [0,1].
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.errors import BadInputError
from bench.images import list_images, read_image

_PRENET_NAME = re.compile(r"^(no)?rain-(.+)$")
SYNTH_MARGIN = 16  # px of context synthesised around a patch, so streaks do not stop at its border


def _downscale(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """Shrink (area filter) so the longer side is at most ``max_side`` px; smaller images are kept."""
    if max_side is None or max(image.shape[:2]) <= max_side:
        return image
    import cv2

    scale = max_side / max(image.shape[:2])
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def find_pairs(root: Path) -> list[tuple[Path, Path]]:
    """(rainy, clean) file pairs under ``root``: ``input/`` + ``target/`` with equal stems, or
    ``rain-X`` + ``norain-X`` in ``root`` itself. Raises BadInputError when none are found.
    """
    root = Path(root)
    if not root.is_dir():
        raise BadInputError(f"training data {root}: folder not found; pass an existing folder")
    if (root / "input").is_dir() and (root / "target").is_dir():
        targets = {p.stem: p for p in list_images(root / "target")}
        pairs = [(p, targets[p.stem]) for p in list_images(root / "input") if p.stem in targets]
    else:
        rainy: dict[str, Path] = {}
        clean: dict[str, Path] = {}
        for p in list_images(root):
            match = _PRENET_NAME.match(p.stem)
            if match:
                (clean if match.group(1) else rainy)[match.group(2)] = p
        pairs = [(rainy[k], clean[k]) for k in sorted(rainy) if k in clean]
    if not pairs:
        raise BadInputError(
            f"training data {root}: 0 pairs found (expected input/*.png and target/*.png with equal names, "
            f"or rain-NNN.png and norain-NNN.png side by side); fix the layout or use synth_from with clean photos"
        )
    return pairs


class PairedImages:
    """Rainy/clean pairs held in memory (float32 HxWx3 in [0,1])."""

    def __init__(self, root: Path, max_side: int | None = None) -> None:
        self.root = Path(root)
        self.pairs: list[tuple[np.ndarray, np.ndarray]] = []
        for rainy_path, clean_path in find_pairs(self.root):
            rainy, clean = read_image(rainy_path), read_image(clean_path)
            if rainy.shape != clean.shape:
                raise BadInputError(
                    f"training pair {rainy_path.name}: size {rainy.shape[:2]} differs from {clean_path.name} "
                    f"{clean.shape[:2]}; crop or replace one of them"
                )
            self.pairs.append((_downscale(rainy, max_side), _downscale(clean, max_side)))
        self.description = f"paired folder {self.root} ({len(self.pairs)} pairs)"

    def __len__(self) -> int:
        return len(self.pairs)

    def sizes(self) -> list[tuple[int, int]]:
        return [pair[1].shape[:2] for pair in self.pairs]

    def patch(self, index: int, patch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        rainy, clean = self.pairs[index]
        top, left = _corner(clean.shape[:2], patch, rng)
        return (rainy[top:top + patch, left:left + patch], clean[top:top + patch, left:left + patch])


class SynthRainImages:
    """Clean photographs; each patch gets fresh synthetic rain of ``preset`` ("light" or "heavy"), or of one
    preset drawn uniformly per patch when several are given separated by commas ("light,heavy")."""

    def __init__(self, root: Path, preset: str = "light", max_side: int | None = 512) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise BadInputError(f"synth_from {self.root}: folder not found; pass a folder of clean photographs")
        paths = list_images(self.root)
        if not paths:
            raise BadInputError(f"synth_from {self.root}: no images found (png, jpg, bmp, tif, webp); add photographs")
        self.paths = paths
        from bench.data.synth import PRESETS

        self.presets = [name.strip() for name in preset.split(",") if name.strip()]
        unknown = [name for name in self.presets if name not in PRESETS]
        if unknown or not self.presets:
            raise BadInputError(f"rain preset {preset!r}: unknown {', '.join(unknown) or '(empty)'}; choose from "
                                f"{', '.join(PRESETS)}, or several separated by commas (e.g. light,heavy)")
        self.images = [_downscale(read_image(p), max_side) for p in paths]
        kind = "preset" if len(self.presets) == 1 else "presets (one drawn per patch)"
        self.description = f"{len(paths)} clean photographs from {self.root}, synthetic rain {kind} {preset!r}"

    def __len__(self) -> int:
        return len(self.images)

    def sizes(self) -> list[tuple[int, int]]:
        return [image.shape[:2] for image in self.images]

    def patch(self, index: int, patch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        from bench.data.synth import synthesize_rain

        image = self.images[index]
        h, w = image.shape[:2]
        size = min(patch + 2 * SYNTH_MARGIN, h, w)
        top, left = _corner((h, w), size, rng)
        clean = image[top:top + size, left:left + size]
        # a single preset draws no random number, so single-preset runs keep their random stream
        preset = self.presets[0] if len(self.presets) == 1 else self.presets[int(rng.integers(len(self.presets)))]
        rainy = synthesize_rain(clean, preset, rng)
        off = (size - patch) // 2
        return rainy[off:off + patch, off:off + patch], clean[off:off + patch, off:off + patch]


def _corner(shape: tuple[int, int], patch: int, rng: np.random.Generator) -> tuple[int, int]:
    h, w = shape
    if h < patch or w < patch:
        raise BadInputError(f"training image of {h}x{w} px is smaller than the {patch} px patch; lower the patch size")
    return int(rng.integers(0, h - patch + 1)), int(rng.integers(0, w - patch + 1))


@dataclass
class PatchSampler:
    """Draws random batches of patches with random flips from a paired or synthetic source."""

    source: PairedImages | SynthRainImages
    patch: int = 100
    stride: int = 80  # only used to size an epoch, as the official patch extraction does

    def patches_per_epoch(self) -> int:
        """Patches one epoch holds: the stride-80 grid of every image (PReNet/SAPNet's data preparation)."""
        total = 0
        for h, w in self.source.sizes():
            total += max(1, (h - self.patch) // self.stride + 1) * max(1, (w - self.patch) // self.stride + 1)
        return total

    def batch(self, size: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(rainy, clean): float32 Bx3xPxP tensors in [0,1]."""
        rainy_list, clean_list = [], []
        for _ in range(size):
            rainy, clean = self.source.patch(int(rng.integers(len(self.source))), self.patch, rng)
            if rng.random() < 0.5:
                rainy, clean = rainy[:, ::-1], clean[:, ::-1]
            if rng.random() < 0.5:
                rainy, clean = rainy[::-1], clean[::-1]
            rainy_list.append(np.ascontiguousarray(rainy.transpose(2, 0, 1)))
            clean_list.append(np.ascontiguousarray(clean.transpose(2, 0, 1)))
        return torch.from_numpy(np.stack(rainy_list)), torch.from_numpy(np.stack(clean_list))
