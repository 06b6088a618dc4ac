"""Natural-scene-statistics features shared by BRISQUE and NIQE, following the LIVE MATLAB releases.

Everything works on float64 grey images on the 0..255 scale. The pieces reproduce MATLAB behaviour
that changes the numbers: ``rgb2gray`` on uint8 (rounded), ``filter2(..., 'same')`` (zero padding) for
BRISQUE and ``imfilter(..., 'replicate')`` for NIQE, ``imresize(im, 0.5)`` (bicubic with antialiasing,
symmetric borders), ``circshift`` (wrap-around) and the moment-matching lookup over shape 0.2:0.001:10.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage
from scipy.special import gammaln

# MATLAB rgb2gray: first row of inv([1 0.956 0.621; 1 -0.272 -0.647; 1 -1.106 1.703]).
RGB2GRAY_WEIGHTS = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])

# |MSCN| below this is floating-point residue of a flat region (see :func:`mscn`).
FLAT_RESIDUE = 1e-8

# Shape grid of the official moment-matching lookup (MATLAB 0.2:0.001:10).
SHAPE_GRID = 0.2 + 0.001 * np.arange(9801)
_LG1, _LG2, _LG3 = gammaln(1.0 / SHAPE_GRID), gammaln(2.0 / SHAPE_GRID), gammaln(3.0 / SHAPE_GRID)
GGD_RATIO = np.exp(_LG1 + _LG3 - 2.0 * _LG2)  # Gamma(1/a)Gamma(3/a)/Gamma(2/a)^2
AGGD_RATIO = np.exp(2.0 * _LG2 - _LG1 - _LG3)  # Gamma(2/a)^2/(Gamma(1/a)Gamma(3/a))


def rgb_to_gray(image: np.ndarray) -> np.ndarray:
    """MATLAB ``double(rgb2gray(uint8 image))``: image uint8 HxWx3 RGB (or HxW) -> float64 HxW in 0..255, integral."""
    if image.dtype != np.uint8:
        raise TypeError(f"rgb_to_gray: expected a uint8 image, got {image.dtype}; quantise to uint8 first")
    if image.ndim == 2:
        return image.astype(np.float64)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"rgb_to_gray: expected HxW or HxWx3 RGB, got shape {image.shape}")
    gray = image[..., :3].astype(np.float64) @ RGB2GRAY_WEIGHTS
    return np.clip(np.round(gray), 0, 255)


def gaussian_window(size: int = 7, sigma: float = 7.0 / 6.0) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', size, sigma)``, normalised to sum 1."""
    r = (size - 1) / 2.0
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    window = np.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
    return window / window.sum()


def mscn(
    gray: np.ndarray, padding: Literal["zero", "replicate"], window: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean-subtracted contrast-normalised coefficients ``(im - mu) / (sigma + 1)`` and the local sigma.

    gray: float64 HxW on 0..255. padding "zero" is MATLAB ``filter2 'same'`` (BRISQUE), "replicate" is
    ``imfilter 'replicate'`` (NIQE). In flat regions ``im - mu`` is pure rounding residue (about 1e-14)
    whose sign depends on the order of summation; it is set to exactly 0, so such pixels count on
    neither side of the AGGD fits. This reproduces the official scores best: pyiqa's calibration image
    I19 (large flat areas) reads BRISQUE 74.4 (official 72.3) instead of 62.8..64.2 with random residue.
    """
    window = gaussian_window() if window is None else window
    mode = "constant" if padding == "zero" else "nearest"
    mu = ndimage.correlate(gray, window, mode=mode, cval=0.0)
    second = ndimage.correlate(gray * gray, window, mode=mode, cval=0.0)
    sigma = np.sqrt(np.abs(second - mu * mu))
    coefficients = (gray - mu) / (sigma + 1.0)
    coefficients[np.abs(coefficients) < FLAT_RESIDUE] = 0.0
    return coefficients, sigma


def ggd_fit(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Generalised Gaussian fit by the official lookup, per row of ``values`` (N x M) -> (shape, std)."""
    values = np.atleast_2d(values)
    sigma_sq = np.mean(values * values, axis=1)
    mean_abs = np.mean(np.abs(values), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = sigma_sq / (mean_abs * mean_abs)
    shape = _lookup(GGD_RATIO, rho, squared=False)
    return shape, np.sqrt(sigma_sq)


def aggd_fit(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Asymmetric GGD fit by the official lookup, per row of ``values`` (N x M) -> (shape, left std, right std).

    Rows without negative (or positive) values give NaN, as in MATLAB.
    """
    values = np.atleast_2d(values)
    neg, pos = values < 0, values > 0
    sq = values * values
    with np.errstate(divide="ignore", invalid="ignore"):
        left_std = np.sqrt(np.where(neg, sq, 0.0).sum(axis=1) / neg.sum(axis=1))
        right_std = np.sqrt(np.where(pos, sq, 0.0).sum(axis=1) / pos.sum(axis=1))
        gamma_hat = left_std / right_std
        r_hat = np.mean(np.abs(values), axis=1) ** 2 / np.mean(sq, axis=1)
        r_hat_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    shape = _lookup(AGGD_RATIO, r_hat_norm, squared=True)
    return shape, left_std, right_std


def _lookup(table: np.ndarray, target: np.ndarray, squared: bool) -> np.ndarray:
    """Grid shape whose table value is nearest to ``target`` (MATLAB ``min`` over the whole grid).

    Both tables are monotonic, so the nearest entry is one of the two neighbours found by a binary
    search; on an exact tie the first (smaller) index wins, as MATLAB's ``min`` does. NaN stays NaN.
    ``squared`` only documents which cost the release used; both costs have the same minimiser.
    """
    del squared
    increasing = table[-1] > table[0]
    ordered = table if increasing else table[::-1]
    shapes = np.full(target.shape, np.nan)
    ok = np.isfinite(target)
    if ok.any():
        t = target[ok]
        hi = np.clip(np.searchsorted(ordered, t), 1, len(ordered) - 1)
        lo = hi - 1
        pick_lo = np.abs(ordered[lo] - t) <= np.abs(ordered[hi] - t)
        idx = np.where(pick_lo, lo, hi)
        if not increasing:  # map back; on a tie prefer the smaller original index
            tie = np.abs(ordered[lo] - t) == np.abs(ordered[hi] - t)
            idx = np.where(tie, hi, idx)
            idx = len(ordered) - 1 - idx
        shapes[ok] = SHAPE_GRID[idx]
    return shapes


def gamma_ratio(numerator: float | np.ndarray, denominator: float | np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Gamma(numerator/shape) / Gamma(denominator/shape), computed in log space."""
    return np.exp(gammaln(numerator / shape) - gammaln(denominator / shape))


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


def _resize_weights(in_len: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB imresize bicubic contributions (antialiased when shrinking): indices and weights, out_len x P."""
    out_len = int(np.ceil(in_len * scale))
    kernel_scale = min(scale, 1.0)
    width = 4.0 / kernel_scale
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = int(np.ceil(width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    weights = kernel_scale * _cubic(kernel_scale * (u[:, None] - indices))
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_len)]
    keep = np.any(weights != 0, axis=0)
    return indices[:, keep], weights[:, keep]


def imresize_half(gray: np.ndarray) -> np.ndarray:
    """MATLAB ``imresize(gray, 0.5)`` on a double image: bicubic, antialiased, rows first, no rounding."""
    out = gray
    for axis in (0, 1):
        idx, w = _resize_weights(out.shape[axis], 0.5)
        taken = np.take(out, idx, axis=axis)  # axis becomes (out_len, P)
        if axis == 0:
            out = np.einsum("opw,op->ow", taken, w)
        else:
            out = np.einsum("hop,op->ho", taken, w)
    return out
