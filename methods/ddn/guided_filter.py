"""The fast guided filter (He & Sun, 2015) as DDN's official test code uses it to split an image into a
smooth base layer and a detail layer.

It reproduces the MATLAB reference (``fastguidedfilter.m``) step for step: nearest-neighbour subsampling by
``s`` the way MATLAB's ``imresize(I, 1/s, 'nearest')`` picks pixels, box means over the pixels that lie
inside the image (``boxfilter.m`` divided by the window's pixel count), and bilinear upsampling of the
coefficients to the full size (``imresize(..., [H W], 'bilinear')``, which equals PyTorch's bilinear
interpolation with ``align_corners=False`` when enlarging). Computations run in float64 like MATLAB.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def box_sum(x: torch.Tensor, r: int) -> torch.Tensor:
    """Sum of ``x`` over the (2r+1)x(2r+1) window around each pixel, clipped at the image border.

    x: ...xHxW tensor; r: window radius in pixels (>= 0). Returns the same shape.
    """
    if r < 0:
        raise ValueError(f"box_sum: radius must be >= 0, got {r}")
    h, w = x.shape[-2:]
    rh, rw = min(r, h - 1), min(r, w - 1)
    out = x
    for dim, rad in ((-2, rh), (-1, rw)):
        n = out.shape[dim]
        # cumulative sum with a leading zero: window sum = c[hi] - c[lo]
        c = torch.cumsum(out, dim=dim)
        c = torch.cat([torch.zeros_like(c.narrow(dim, 0, 1)), c], dim=dim)
        idx = torch.arange(n, device=x.device)
        hi = (idx + rad + 1).clamp(max=n)
        lo = (idx - rad).clamp(min=0)
        out = c.index_select(dim, hi) - c.index_select(dim, lo)
    return out


def box_mean(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean of ``x`` over the (2r+1)x(2r+1) window clipped at the border (the in-image pixels only)."""
    ones = torch.ones(x.shape[-2:], dtype=x.dtype, device=x.device)
    return box_sum(x, r) / box_sum(ones, r)


def matlab_nearest_subsample(x: torch.Tensor, s: int) -> torch.Tensor:
    """``imresize(x, 1/s, 'nearest')`` for an integer factor ``s``: ceil(H/s) x ceil(W/s) pixels.

    MATLAB samples output pixel u (0-based) at input position s*u + s/2 - 0.5 and takes the pixel
    floor(s*u + s/2) (0-based); positions past the last pixel are mirrored back into the image.
    """
    h, w = x.shape[-2:]

    def rows(n: int) -> torch.Tensor:
        m = math.ceil(n / s)
        j = torch.floor(torch.arange(m, dtype=torch.float64) * s + s / 2).long()
        j = torch.where(j >= n, 2 * n - 1 - j, j)  # symmetric mirror, as MATLAB's imresize
        return j.clamp(0, n - 1).to(x.device)

    return x.index_select(-2, rows(h)).index_select(-1, rows(w))


def fast_guided_filter(guide: torch.Tensor, src: torch.Tensor, r: int, eps: float, s: int = 1) -> torch.Tensor:
    """Grey-guide fast guided filter applied channel by channel.

    guide, src: BxCxHxW tensors of the same shape (each channel of ``src`` is filtered with the same channel
    of ``guide``); r: window radius in full-resolution pixels (a multiple of ``s``); eps: regulariser in
    squared intensity units; s: subsampling factor (1 gives the exact guided filter). Returns float64.
    """
    if guide.shape != src.shape:
        raise ValueError(f"fast_guided_filter: guide {tuple(guide.shape)} and src {tuple(src.shape)} differ")
    if r % s:
        raise ValueError(f"fast_guided_filter: radius {r} must be a multiple of the subsampling factor {s}")
    guide = guide.double()
    src = src.double()
    full_size = guide.shape[-2:]
    i_sub = matlab_nearest_subsample(guide, s) if s > 1 else guide
    p_sub = matlab_nearest_subsample(src, s) if s > 1 else src
    r_sub = r // s
    mean_i = box_mean(i_sub, r_sub)
    mean_p = box_mean(p_sub, r_sub)
    cov_ip = box_mean(i_sub * p_sub, r_sub) - mean_i * mean_p
    var_i = box_mean(i_sub * i_sub, r_sub) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    mean_a = box_mean(a, r_sub)
    mean_b = box_mean(b, r_sub)
    if s > 1:
        mean_a = F.interpolate(mean_a, size=full_size, mode="bilinear", align_corners=False)
        mean_b = F.interpolate(mean_b, size=full_size, mode="bilinear", align_corners=False)
    return mean_a * guide + mean_b
