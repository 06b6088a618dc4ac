"""Full-reference PSNR/SSIM under named literature conventions ("profiles").

Papers disagree on how PSNR/SSIM are computed by more than the gaps between methods, so every figure
names its profile. A profile fixes: how the method output is quantised to 8 bits, the colour space
(rounded or unrounded BT.601 Y, or RGB), the PSNR peak, SSIM's automatic downsampling and a border crop.
See docs/metric-profiles.md for the sources and the measured size of the differences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage

from bench.errors import UnknownNameError

Quantisation = Literal["round", "truncate"]
Luma = Literal["y-rounded", "y", "rgb"]


@dataclass(frozen=True)
class FullReferenceProfile:
    """One PSNR/SSIM convention. Images enter as 8-bit values (0..255)."""

    name: str
    description: str
    source: str
    quantisation: Quantisation  # how a method output is brought to 8 bits
    luma: Luma  # y-rounded: MATLAB rgb2ycbcr on uint8; y: unrounded BT.601 Y; rgb: three channels
    ssim_downsample: bool = False  # MATLAB/Wang ssim.m automatic downsampling f = max(1, round(min(H,W)/256))
    crop_border: int = 0  # pixels removed on every side before both metrics


PROFILES: dict[str, FullReferenceProfile] = {
    p.name: p
    for p in (
        FullReferenceProfile(
            "matlab-y", "rounded uint8 YCbCr Y, peak 255, Wang SSIM 11x11 Gaussian 1.5 'valid'",
            "MPRNet / Restormer evaluate_PSNR_SSIM.m", "round", "y-rounded"),
        FullReferenceProfile(
            "prenet-y", "unrounded Y from double, peak 1, SSIM with MATLAB's automatic downsampling",
            "PReNet statistic/*.m", "truncate", "y", ssim_downsample=True),
        FullReferenceProfile(
            "basicsr-y", "BT.601 float Y, peak 255, Gaussian SSIM, crop_border 0",
            "BasicSR calculate_psnr/ssim(test_y_channel=True)", "round", "y"),
        FullReferenceProfile(
            "rgb", "three RGB channels, peak 255; SSIM per channel ('valid'), averaged",
            "SAPNet authors' evaluation script (the paper's Table 3)", "truncate", "rgb"),
    )
}
DEFAULT_PROFILE = "matlab-y"

_GAUSS_SIGMA = 1.5
_GAUSS_RADIUS = 5  # 11x11 window
_K1, _K2, _L = 0.01, 0.03, 255.0


def get_profile(name: str) -> FullReferenceProfile:
    if name not in PROFILES:
        import difflib

        close = difflib.get_close_matches(name, list(PROFILES), n=2)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise UnknownNameError(f"unknown profile {name!r}.{hint} Known profiles: {', '.join(PROFILES)} (or 'all').")
    return PROFILES[name]


def quantise_output(output: np.ndarray, quantisation: Quantisation) -> np.ndarray:
    """Bring a method output to 8-bit values (float64 holding integers 0..255).

    output: uint16 HxWx3 (as stored by the runner) or float HxWx3 in [0,1]. Integer arithmetic on
    uint16 keeps an 8-bit input exact (v*257 -> v) under both rules.
    """
    if output.dtype == np.uint16:
        wide = output.astype(np.int64) * 255
        q = wide // 65535 if quantisation == "truncate" else (wide + 32767) // 65535
        return q.astype(np.float64)
    clipped = np.clip(output.astype(np.float64), 0.0, 1.0) * 255.0
    return np.floor(clipped) if quantisation == "truncate" else np.floor(clipped + 0.5)


def target_to_8bit(target: np.ndarray) -> np.ndarray:
    """Ground truth float HxWx3 in [0,1] (read from an 8-bit file) -> float64 values 0..255, rounded."""
    if target.dtype == np.uint8:
        return target.astype(np.float64)
    return np.floor(np.clip(target.astype(np.float64), 0.0, 1.0) * 255.0 + 0.5)


def bt601_y(rgb255: np.ndarray) -> np.ndarray:
    """BT.601 luma on the 0..255 scale, Y in [16,235] (MATLAB rgb2ycbcr), unrounded."""
    return 16.0 + (65.481 * rgb255[..., 0] + 128.553 * rgb255[..., 1] + 24.966 * rgb255[..., 2]) / 255.0


def _gaussian_window_1d() -> np.ndarray:
    x = np.arange(-_GAUSS_RADIUS, _GAUSS_RADIUS + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2 * _GAUSS_SIGMA**2))
    return g / g.sum()


_WINDOW = _gaussian_window_1d()


def _filter_valid(stack: np.ndarray) -> np.ndarray:
    """Separable 11x11 Gaussian over axes (-2,-1) of ``stack``, keeping the 'valid' part."""
    out = ndimage.correlate1d(stack, _WINDOW, axis=-2, mode="constant")
    out = ndimage.correlate1d(out, _WINDOW, axis=-1, mode="constant")
    r = _GAUSS_RADIUS
    return out[..., r:-r, r:-r]


def ssim_wang(a: np.ndarray, b: np.ndarray, downsample: bool = False) -> np.ndarray:
    """Wang et al. SSIM of two images on the 0..255 scale.

    a, b: float64 arrays ...xHxW (leading axes are channels/images, each scored separately).
    Returns the mean SSIM per leading index (shape a.shape[:-2]).
    """
    if downsample:
        f = max(1, int(round(min(a.shape[-2:]) / 256)))
        if f > 1:  # MATLAB: imfilter(img, ones(f)/f^2, 'symmetric', 'same') then take every f-th pixel
            box = np.ones(f) / f
            def reduce(x: np.ndarray) -> np.ndarray:
                origin = -1 if f % 2 == 0 else 0  # MATLAB centres even kernels at floor((f+1)/2)
                y = ndimage.correlate1d(x, box, axis=-2, mode="reflect", origin=origin)
                y = ndimage.correlate1d(y, box, axis=-1, mode="reflect", origin=origin)
                return y[..., ::f, ::f]
            a, b = reduce(a), reduce(b)
    c1, c2 = (_K1 * _L) ** 2, (_K2 * _L) ** 2
    stats = _filter_valid(np.stack([a, b, a * a, b * b, a * b]))
    mu_a, mu_b, aa, bb, ab = stats
    mu_a2, mu_b2, mu_ab = mu_a * mu_a, mu_b * mu_b, mu_a * mu_b
    var_a, var_b, cov = aa - mu_a2, bb - mu_b2, ab - mu_ab
    ssim_map = ((2 * mu_ab + c1) * (2 * cov + c2)) / ((mu_a2 + mu_b2 + c1) * (var_a + var_b + c2))
    return ssim_map.mean(axis=(-2, -1))


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    """PSNR in dB between arrays on the same scale with the given peak; inf for identical images."""
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)


def compute_full_reference(output: np.ndarray, target: np.ndarray, profile: str | FullReferenceProfile) -> dict[str, float]:
    """PSNR (dB) and SSIM (0..1) of ``output`` against ``target`` under ``profile``.

    output: uint16 HxWx3 (stored output) or float HxWx3 RGB in [0,1]; target: float HxWx3 RGB in [0,1]
    from an 8-bit file (or uint8). Returns {"psnr": ..., "ssim": ...}.
    """
    prof = get_profile(profile) if isinstance(profile, str) else profile
    if output.shape != target.shape:
        raise ValueError(f"output shape {output.shape} differs from target shape {target.shape}")
    out8 = quantise_output(output, prof.quantisation)
    tgt8 = target_to_8bit(target)
    if prof.crop_border:
        c = prof.crop_border
        out8, tgt8 = out8[c:-c, c:-c], tgt8[c:-c, c:-c]
    if prof.luma == "rgb":
        value = psnr(out8, tgt8, 255.0)
        ssim = float(ssim_wang(np.moveaxis(out8, -1, 0), np.moveaxis(tgt8, -1, 0)).mean())
        return {"psnr": value, "ssim": ssim}
    y_out, y_tgt = bt601_y(out8), bt601_y(tgt8)
    if prof.luma == "y-rounded":
        y_out, y_tgt = np.floor(y_out + 0.5), np.floor(y_tgt + 0.5)
    if prof.name == "prenet-y":  # MATLAB double Y in [0,1], PSNR peak 1
        value = psnr(y_out / 255.0, y_tgt / 255.0, 1.0)
    else:
        value = psnr(y_out, y_tgt, 255.0)
    ssim = float(ssim_wang(y_out, y_tgt, downsample=prof.ssim_downsample))
    return {"psnr": value, "ssim": ssim}
