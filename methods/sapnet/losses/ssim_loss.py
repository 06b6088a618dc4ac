"""Negative SSIM loss (SAPNet eq. 1, PReNet's only loss).

SSIM of Wang et al. with an 11x11 Gaussian window (sigma 1.5), computed per RGB channel on images in
[0,1] (C1 = 0.01^2, C2 = 0.03^2), zero padding of 5 pixels so the map keeps the image size, averaged
over channels, pixels and the batch, as in the SSIM code PReNet and SAPNet train with.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

WINDOW = 11
SIGMA = 1.5
C1 = 0.01**2
C2 = 0.03**2


def gaussian_window(size: int = WINDOW, sigma: float = SIGMA) -> torch.Tensor:
    """size x size Gaussian kernel summing to 1 (float32)."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g).float()


def ssim(x: torch.Tensor, y: torch.Tensor, window: torch.Tensor | None = None) -> torch.Tensor:
    """Mean SSIM of two float BxCxHxW images in [0,1] -> scalar tensor in [-1, 1] (1 when x == y).

    Always computed in float32 (also under autocast): variances from E[x^2] - E[x]^2 cancel badly in 16 bits.
    """
    if x.shape != y.shape:
        raise ValueError(f"ssim: images differ in shape, {tuple(x.shape)} vs {tuple(y.shape)}; crop them alike")
    with torch.autocast(x.device.type, enabled=False):
        return _ssim_fp32(x.float(), y.float(), window)


def ssim_map(x: torch.Tensor, y: torch.Tensor, window: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pixel SSIM map (BxCxHxW, zero padding at the borders) of two float images in [0,1], in float32."""
    with torch.autocast(x.device.type, enabled=False):
        return _ssim_map_fp32(x.float(), y.float(), window)


def _ssim_fp32(x: torch.Tensor, y: torch.Tensor, window: torch.Tensor | None) -> torch.Tensor:
    return _ssim_map_fp32(x, y, window).mean()


def _ssim_map_fp32(x: torch.Tensor, y: torch.Tensor, window: torch.Tensor | None) -> torch.Tensor:
    channels = x.shape[1]
    if window is None:
        window = gaussian_window().to(x)
    kernel = window.to(dtype=x.dtype, device=x.device).expand(channels, 1, *window.shape)
    pad = window.shape[-1] // 2

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, kernel, padding=pad, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + C1) * (2 * cov + C2)
    den = (mu_x**2 + mu_y**2 + C1) * (var_x + var_y + C2)
    return num / den


class NegativeSSIMLoss(nn.Module):
    """``-SSIM(derained, clean)``: -1 for a perfect result, up to 1. Inputs: float Bx3xHxW in [0,1]."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", gaussian_window(), persistent=False)

    def forward(self, derained: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
        return -ssim(derained, clean, self.window)
