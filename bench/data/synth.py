"""Rain synthesizer: streak layers with motion blur, and for heavy rain a veiling (haze) term.

Heavy rain follows the Rain100H rain model ``O = a (B + sum_t S_t) + (1 - a) A`` with transmission ``a``
in (0,1] and atmospheric light ``A``; light rain is ``O = B + sum_t S_t``. Every random draw comes from the
``numpy.random.Generator`` passed in, and all filtering is direct (no FFT), so a seed gives bit-identical
images on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class RainPreset:
    """Ranges the synthesizer draws from (uniformly, per image and per layer)."""

    layers: tuple[int, int]  # number of streak layers (inclusive range)
    density: tuple[float, float]  # streak seeds per pixel
    length: tuple[int, int]  # streak length, px
    angle: tuple[float, float]  # degrees from vertical; one angle per image, jittered per layer
    width: tuple[float, float]  # Gaussian sigma across the streak, px
    brightness: tuple[float, float]  # peak streak intensity added, in [0,1]
    transmission: tuple[float, float] | None = None  # a in O = a(B+S) + (1-a)A; None: no haze
    airlight: tuple[float, float] = (0.8, 0.95)  # A, grey level in [0,1]


PRESETS: dict[str, RainPreset] = {
    # light: one layer of long, thin, faint streaks; its coverage and intensity statistics match
    # Rain100L's rain layer (about 12 % of pixels above 0.05, 99.5th percentile about 0.33)
    "light": RainPreset(layers=(1, 1), density=(0.0012, 0.0025), length=(25, 55), angle=(-35, 35),
                        width=(0.4, 0.7), brightness=(0.12, 0.3)),
    "heavy": RainPreset(layers=(3, 4), density=(0.0006, 0.0016), length=(20, 40), angle=(-30, 30),
                        width=(0.5, 1.0), brightness=(0.3, 0.7), transmission=(0.7, 0.9)),
}


def motion_blur_kernel(length: int, angle_deg: float, width: float) -> np.ndarray:
    """A line of ``length`` px at ``angle_deg`` from vertical (anti-aliased by bilinear splatting),
    Gaussian-blurred across by ``width``; peak normalised to 1 (a streak is as bright as its seed)."""
    size = int(length) | 1
    kernel = np.zeros((size + 1, size + 1), dtype=np.float64)
    centre = size // 2
    theta = np.deg2rad(angle_deg)
    steps = np.linspace(-(length - 1) / 2, (length - 1) / 2, 4 * int(length))
    rows = np.clip(centre + steps * np.cos(theta), 0, size - 1)
    cols = np.clip(centre + steps * np.sin(theta), 0, size - 1)
    r0, c0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
    fr, fc = rows - r0, cols - c0
    for dr, dc, w in ((0, 0, (1 - fr) * (1 - fc)), (1, 0, fr * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 1, fr * fc)):
        np.add.at(kernel, (r0 + dr, c0 + dc), w)
    kernel = kernel[:size, :size]
    if width > 0:
        kernel = ndimage.gaussian_filter(kernel, sigma=width, mode="constant")
    return kernel / kernel.max()


def streak_layer(shape: tuple[int, int], preset: RainPreset, angle: float, rng: np.random.Generator) -> np.ndarray:
    """One layer of streaks, float64 HxW in [0,1]."""
    height, width = shape
    density = rng.uniform(*preset.density)
    count = int(round(density * height * width))
    seeds = np.zeros(shape, dtype=np.float64)
    rows = rng.integers(0, height, count)
    cols = rng.integers(0, width, count)
    seeds[rows, cols] = rng.uniform(*preset.brightness, size=count)
    length = int(rng.integers(preset.length[0], preset.length[1] + 1))
    kernel = motion_blur_kernel(length, angle + rng.uniform(-3.0, 3.0), rng.uniform(*preset.width))
    return np.clip(ndimage.convolve(seeds, kernel, mode="constant"), 0.0, 1.0)


def synthesize_rain(clean: np.ndarray, preset: str | RainPreset = "light",
                    rng: np.random.Generator | None = None) -> np.ndarray:
    """Add synthetic rain to ``clean`` (float HxWx3 RGB in [0,1]) -> float32 HxWx3 in [0,1]."""
    if isinstance(preset, str):
        try:
            preset = PRESETS[preset]
        except KeyError:
            raise ValueError(f"unknown rain preset {preset!r}; choose one of {', '.join(PRESETS)}") from None
    rng = rng if rng is not None else np.random.default_rng(0)
    background = np.asarray(clean, dtype=np.float64)
    angle = rng.uniform(*preset.angle)
    layers = int(rng.integers(preset.layers[0], preset.layers[1] + 1))
    streaks = np.zeros(background.shape[:2], dtype=np.float64)
    for _ in range(layers):
        streaks += streak_layer(background.shape[:2], preset, angle, rng)
    rainy = background + streaks[..., None]
    if preset.transmission is not None:
        a = rng.uniform(*preset.transmission)
        airlight = rng.uniform(*preset.airlight)
        rainy = a * rainy + (1.0 - a) * airlight
    return np.clip(rainy, 0.0, 1.0).astype(np.float32)
