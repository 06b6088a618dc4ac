"""The embedded default suite: synthetic rain on photographs that installed packages ship.

Needs no download. Backgrounds are fixed crops of scikit-image and scikit-learn sample photographs
(downscaled by an integer factor with block means); rain comes from :mod:`bench.data.synth` with a seed
per image, so generation is bit-identical across machines. Written once under the cache folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from bench.data.synth import synthesize_rain

CROP_HW = (192, 256)  # height, width of every embedded image


def _photographs() -> list[tuple[str, np.ndarray]]:
    """Colour photographs shipped inside the scikit-image and scikit-learn wheels (uint8 HxWx3)."""
    from skimage import data
    from sklearn.datasets import load_sample_image

    left, right, _ = data.stereo_motorcycle()
    return [
        ("astronaut", data.astronaut()), ("chelsea", data.chelsea()), ("coffee", data.coffee()),
        ("rocket", data.rocket()), ("motorcycle_left", left), ("motorcycle_right", right),
        ("china", load_sample_image("china.jpg")), ("flower", load_sample_image("flower.jpg")),
    ]


def _downscale(image: np.ndarray) -> np.ndarray:
    """Integer block-mean downscaling so the short side stays >= 192 px (deterministic)."""
    factor = min(2, max(1, min(image.shape[0] // CROP_HW[0], image.shape[1] // CROP_HW[1])))
    if factor == 1:
        return image.astype(np.float64) / 255.0
    h, w = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    blocks = image[:h, :w].astype(np.float64).reshape(h // factor, factor, w // factor, factor, 3)
    return blocks.mean(axis=(1, 3)) / 255.0


def backgrounds(count: int) -> list[tuple[str, np.ndarray]]:
    """``count`` clean crops (float64 HxWx3 in [0,1], quantised to 8 bits), cycling over the photographs
    with crop positions at the corners and the centre, flipped on every second pass."""
    photos = [(name, _downscale(img)) for name, img in _photographs()]
    anchors = [(0.0, 0.0), (1.0, 1.0), (0.5, 0.5), (0.0, 1.0), (1.0, 0.0)]
    out = []
    for index in range(count):
        name, photo = photos[index % len(photos)]
        rnd = index // len(photos)
        fy, fx = anchors[rnd % len(anchors)]
        y = int(round(fy * (photo.shape[0] - CROP_HW[0])))
        x = int(round(fx * (photo.shape[1] - CROP_HW[1])))
        crop = photo[y:y + CROP_HW[0], x:x + CROP_HW[1]]
        if rnd % 2 == 1:
            crop = crop[:, ::-1]
        out.append((f"{index + 1:03d}_{name}", np.floor(crop * 255.0 + 0.5) / 255.0))
    return out


def generate(preset: str, seed: int, count: int, out_dir: Path) -> str:
    """Write ``count`` pairs to ``out_dir/{input,target}`` and return the sha256 digest of all pixels."""
    from bench.images import write_png8

    digest = hashlib.sha256()
    for index, (stem, clean) in enumerate(backgrounds(count)):
        rainy = synthesize_rain(clean, preset, np.random.default_rng([seed, index]))
        rainy8 = np.floor(np.clip(rainy.astype(np.float64), 0, 1) * 255.0 + 0.5).astype(np.uint8)
        clean8 = np.floor(clean * 255.0 + 0.5).astype(np.uint8)
        digest.update(rainy8.tobytes())
        digest.update(clean8.tobytes())
        write_png8(out_dir / "input" / f"{stem}.png", rainy8 / 255.0)
        write_png8(out_dir / "target" / f"{stem}.png", clean8 / 255.0)
    return digest.hexdigest()


def ensure_embedded(card, cache_dir: Path) -> Path:
    """Folder of ``card``'s embedded dataset, generated on first use (atomically, by folder rename)."""
    gen = card.generator
    key = f"{card.name}-{gen['preset']}-s{gen['seed']}-n{gen['count']}"
    root = cache_dir / "embedded" / key
    if (root / "DIGEST").is_file():
        return root
    tmp = root.with_name(f".{key}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    digest = generate(gen["preset"], int(gen["seed"]), int(gen["count"]), tmp)
    expected = gen.get("digest")
    if expected and digest != expected:
        warnings.warn(
            f"{card.name}: generated pixels differ from the card's digest ({digest[:12]} != {expected[:12]}); "
            f"figures on this machine are not comparable with published embedded-suite figures. "
            f"Please report the platform.", stacklevel=2)
    (tmp / "DIGEST").write_text(digest + "\n")
    root.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(tmp, root)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return root
