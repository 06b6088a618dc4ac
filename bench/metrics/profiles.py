"""Full-reference PSNR/SSIM under named literature conventions ("profiles").

Papers disagree on how PSNR/SSIM are computed by more than the gaps between methods, so every figure
names its profile. A profile fixes: how the method output is quantised to 8 bits, the colour space
(rounded or unrounded BT.601 Y, or RGB), the PSNR peak, SSIM's automatic downsampling and a border crop.
See docs/metric-profiles.md for the sources and the measured size of the differences.

Speed: the Gaussian filtering runs through OpenCV's separable float64 filter and the SSIM formula works
in place, so one 480x320 pair costs a few milliseconds under a Y profile (benchmarks/profile_speed.py).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from bench.errors import BadInputError, UnknownNameError

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
    psnr_peak: float = 255.0  # 1.0 where the source measures Y as double in [0,1]
    ssim_downsample: bool = False  # Wang ssim.m automatic downsampling f = max(1, round(min(H,W)/256))
    crop_border: int = 0  # pixels removed on every side before both metrics


PROFILES: dict[str, FullReferenceProfile] = {
    p.name: p
    for p in (
        FullReferenceProfile(
            "matlab-y", "rounded uint8 YCbCr Y, peak 255, Wang SSIM_index 11x11 Gaussian 1.5 'valid'",
            "MPRNet / Restormer evaluate_PSNR_SSIM.m", "round", "y-rounded"),
        FullReferenceProfile(
            "prenet-y", "unrounded Y from double, peak 1, Wang ssim.m with its automatic downsampling",
            "PReNet statistic/*.m", "truncate", "y", psnr_peak=1.0, ssim_downsample=True),
        FullReferenceProfile(
            "basicsr-y", "BT.601 float Y, peak 255, Gaussian SSIM ('valid'), crop_border 0 (basicsr-y:crop_border=N)",
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
_C1, _C2 = (_K1 * _L) ** 2, (_K2 * _L) ** 2
_CROP_SUFFIX = re.compile(r"^(?P<base>[^:]+):crop_border=(?P<n>\d+)$")


def get_profile(name: str) -> FullReferenceProfile:
    """The profile called ``name``; ``<profile>:crop_border=N`` removes N pixels on every side first."""
    match = _CROP_SUFFIX.match(name)
    if match:
        base = get_profile(match["base"])
        n = int(match["n"])
        return base if n == 0 else dataclasses.replace(base, name=f"{base.name}:crop_border={n}", crop_border=n)
    if name not in PROFILES:
        import difflib

        close = difflib.get_close_matches(name, list(PROFILES), n=2)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise UnknownNameError(f"unknown profile {name!r}.{hint} Known profiles: {', '.join(PROFILES)} (or 'all'); "
                               f"append ':crop_border=N' to remove a border.")
    return PROFILES[name]


def _uint16_lut(quantisation: Quantisation) -> np.ndarray:
    """8-bit value of every uint16 code, in exact integer arithmetic (an 8-bit v stored as v*257 -> v)."""
    wide = np.arange(65536, dtype=np.int64) * 255
    q = wide // 65535 if quantisation == "truncate" else (wide + 32767) // 65535
    return q.astype(np.float64)


_LUTS = {q: _uint16_lut(q) for q in ("round", "truncate")}


def quantise_output(output: np.ndarray, quantisation: Quantisation) -> np.ndarray:
    """Bring a method output to 8-bit values (float64 holding integers 0..255), any shape.

    output: uint16 (as stored by the runner) or float in [0,1] (clamped). "truncate" is uint8(255*x)
    (PReNet/SAPNet test scripts), "round" rounds half up (a uint16 code never lies exactly halfway).
    """
    if output.dtype == np.uint16:
        return np.take(_LUTS[quantisation], output)
    if output.dtype == np.uint8:
        return output.astype(np.float64)
    clipped = np.clip(output.astype(np.float64), 0.0, 1.0) * 255.0
    return np.floor(clipped) if quantisation == "truncate" else np.floor(clipped + 0.5)


def target_to_8bit(target: np.ndarray) -> np.ndarray:
    """Ground truth float in [0,1] (read from an 8-bit file) or uint8 -> float64 values 0..255, rounded (halves to even)."""
    if target.dtype == np.uint8:
        return target.astype(np.float64)
    scaled = target * 255.0 if target.dtype == np.float64 else target.astype(np.float64) * 255.0
    np.clip(scaled, 0.0, 255.0, out=scaled)
    return np.rint(scaled, out=scaled)  # values from an 8-bit file sit within 1e-13 of an integer


def bt601_y(rgb255: np.ndarray) -> np.ndarray:
    """BT.601 luma on the 0..255 scale, Y in [16,235] (MATLAB rgb2ycbcr on double, times 255), unrounded."""
    return 16.0 + (65.481 * rgb255[..., 0] + 128.553 * rgb255[..., 1] + 24.966 * rgb255[..., 2]) / 255.0


def bt601_y_rounded(rgb255: np.ndarray) -> np.ndarray:
    """MATLAB rgb2ycbcr on uint8: Y rounded to an integer in [16,235], halves away from zero (up).

    Exact integer arithmetic: 194 of the 2^24 colours have a Y of exactly k+0.5; they round up here,
    as MATLAB's round() specifies (MATLAB's own floating-point sum may land them either side).
    """
    # Integers below 2^31 are exact in float64; the division and floor are exact at the .5 boundary
    # because 255000 * k is representable and a numerator one below it stays below k after division.
    scaled = 65481.0 * rgb255[..., 0]
    scaled += 128553.0 * rgb255[..., 1]
    scaled += 24966.0 * rgb255[..., 2]
    scaled += 16 * 255000 + 127500
    scaled /= 255000.0
    return np.floor(scaled, out=scaled)


def _gaussian_window_1d() -> np.ndarray:
    x = np.arange(-_GAUSS_RADIUS, _GAUSS_RADIUS + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2 * _GAUSS_SIGMA**2))
    return g / g.sum()


_WINDOW = _gaussian_window_1d()


def _filter_valid(plane: np.ndarray) -> np.ndarray:
    """Separable 11x11 Gaussian of one float64 HxW plane, 'valid' part only (H-10 x W-10)."""
    r = _GAUSS_RADIUS
    out = cv2.sepFilter2D(np.ascontiguousarray(plane), cv2.CV_64F, _WINDOW, _WINDOW, borderType=cv2.BORDER_CONSTANT)
    return out[r:-r, r:-r]


def matlab_round_positive(x: float) -> int:
    """MATLAB round() for x >= 0: halves go up (Python's round() goes to even)."""
    return int(np.floor(x + 0.5))


def ssim_downsample_factor(height: int, width: int) -> int:
    """Wang ssim.m: f = max(1, round(min(H, W) / 256)); 2 from a short side of 384 px."""
    return max(1, matlab_round_positive(min(height, width) / 256))


def matlab_box_downsample(plane: np.ndarray, f: int) -> np.ndarray:
    """imfilter(img, ones(f)/f^2, 'symmetric', 'same') then img(1:f:end, 1:f:end), over the last two axes.

    MATLAB centres an even kernel at floor((f+1)/2), one pixel before scipy's centre: origin -1.
    """
    from scipy import ndimage  # only this profile needs it: `bench run` starts without scipy

    box = np.full(f, 1.0 / f)
    origin = -1 if f % 2 == 0 else 0
    out = ndimage.correlate1d(plane, box, axis=-2, mode="reflect", origin=origin)  # scipy 'reflect' = 'symmetric'
    out = ndimage.correlate1d(out, box, axis=-1, mode="reflect", origin=origin)
    return out[..., ::f, ::f]


def _ssim_plane(a: np.ndarray, b: np.ndarray) -> float:
    """Mean Wang SSIM of two float64 HxW planes on the 0..255 scale (C1, C2 from L=255), 'valid' map."""
    mu_a, mu_b = _filter_valid(a), _filter_valid(b)
    sum_sq = _filter_valid(a * a + b * b)  # only sigma_a^2 + sigma_b^2 is needed: one filter instead of two
    cross = _filter_valid(a * b)
    prod = mu_a * mu_b
    mu_a *= mu_a
    mu_b *= mu_b
    mu_a += mu_b  # mu_a^2 + mu_b^2
    sum_sq -= mu_a  # sigma_a^2 + sigma_b^2
    sum_sq += _C2
    mu_a += _C1
    cross -= prod  # covariance
    cross *= 2.0
    cross += _C2
    prod *= 2.0
    prod += _C1
    prod *= cross
    mu_a *= sum_sq
    prod /= mu_a
    return float(prod.mean())


def ssim_wang(a: np.ndarray, b: np.ndarray, downsample: bool = False) -> np.ndarray:
    """Wang et al. SSIM of two images on the 0..255 scale, 11x11 Gaussian (sigma 1.5), 'valid' map.

    a, b: float64 arrays ...xHxW (leading axes are channels/images, each scored separately), H, W >= 11.
    downsample: Wang ssim.m's automatic box downsampling first. Returns mean SSIM per leading index.
    """
    if a.shape != b.shape:
        raise BadInputError(f"SSIM: image shapes differ ({a.shape} vs {b.shape}); crop both to the same size")
    if downsample:
        f = ssim_downsample_factor(*a.shape[-2:])
        if f > 1:
            a, b = matlab_box_downsample(a, f), matlab_box_downsample(b, f)
    if min(a.shape[-2:]) < 2 * _GAUSS_RADIUS + 1:
        raise BadInputError(f"SSIM needs images of at least 11x11 pixels (after any downsampling), got "
                            f"{a.shape[-1]}x{a.shape[-2]}; use larger crops")
    lead = a.shape[:-2]
    flat_a = a.reshape(-1, *a.shape[-2:]).astype(np.float64, copy=False)
    flat_b = b.reshape(-1, *b.shape[-2:]).astype(np.float64, copy=False)
    values = np.array([_ssim_plane(pa, pb) for pa, pb in zip(flat_a, flat_b, strict=True)])
    return values.reshape(lead)


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    """PSNR in dB between arrays on the same scale with the given peak; inf for identical images."""
    diff = a - b
    mse = float(np.mean(diff * diff))
    return float("inf") if mse == 0 else float(10.0 * np.log10(peak * peak / mse))


def compute_full_reference(output: np.ndarray, target: np.ndarray,
                           profile: str | FullReferenceProfile) -> dict[str, float]:
    """PSNR (dB) and SSIM (0..1) of ``output`` against ``target`` under ``profile``.

    output: uint16 HxWx3 (stored output) or float HxWx3 RGB in [0,1]; target: float HxWx3 RGB in [0,1]
    from an 8-bit file (or uint8). Returns {"psnr": ..., "ssim": ...}.
    """
    prof = get_profile(profile) if isinstance(profile, str) else profile
    if output.shape != target.shape:
        raise BadInputError(f"output shape {output.shape} differs from target shape {target.shape}; "
                            f"a method must return an image of its input's size")
    out8 = quantise_output(output, prof.quantisation)
    tgt8 = target_to_8bit(target)
    if prof.crop_border:
        c = prof.crop_border
        out8, tgt8 = out8[c:-c, c:-c], tgt8[c:-c, c:-c]
    if prof.luma == "rgb":
        planes_out, planes_tgt = np.moveaxis(out8, -1, 0), np.moveaxis(tgt8, -1, 0)
    elif prof.luma == "y-rounded":
        planes_out, planes_tgt = bt601_y_rounded(out8), bt601_y_rounded(tgt8)
    else:
        planes_out, planes_tgt = bt601_y(out8), bt601_y(tgt8)
    scale = prof.psnr_peak / 255.0  # PSNR on the source's own scale (Y as double in [0,1] for peak 1)
    value = psnr(planes_out * scale, planes_tgt * scale, prof.psnr_peak) if scale != 1.0 else \
        psnr(planes_out, planes_tgt, 255.0)
    ssim = float(np.mean(ssim_wang(planes_out, planes_tgt, downsample=prof.ssim_downsample)))
    return {"psnr": value, "ssim": ssim}


def compute_full_reference_many(outputs: Sequence[np.ndarray], targets: Sequence[np.ndarray],
                                profile: str | FullReferenceProfile) -> dict[str, np.ndarray]:
    """Per-pair PSNR (dB) and SSIM of matching sequences of outputs and targets (see compute_full_reference)."""
    if len(outputs) != len(targets):
        raise BadInputError(f"{len(outputs)} outputs but {len(targets)} targets; pass one target per output")
    prof = get_profile(profile) if isinstance(profile, str) else profile
    figures = [compute_full_reference(o, t, prof) for o, t in zip(outputs, targets, strict=True)]
    return {k: np.array([f[k] for f in figures], dtype=np.float64) for k in ("psnr", "ssim")}
