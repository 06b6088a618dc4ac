"""Learned perceptual image similarity loss (SAPNet eq. 4), an LPIPS distance with gradients.

For each layer i of a frozen ImageNet network: unit-normalise the feature vector of every pixel along the
channels, take the squared difference between the derained and clean features, weight each channel by
theta_i, sum over channels, average over pixels; sum over layers; average over the batch.

With VGG-16 (relu1_2 .. relu5_3) theta are LPIPS v0.1's learned linear heads, which the PyPI package
``lpips`` ships (``lpips/weights/v0.1/vgg.pth``). With the offline EfficientNet-Lite0 fallback no learned
heads exist: theta = 1 for every channel (LPIPS's un-learned baseline), and ``heads_name`` says so.
Unlike the official code, every image of the batch counts and the gradient reaches the deraining network.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from methods.sapnet.losses.feature_backbones import (
    FrozenExtractor,
    VGG16Features,
    perceptual_extractor,
)

NORM_EPS = 1e-10


def lpips_heads_file() -> Path | None:
    """``vgg.pth`` of the ``lpips`` package (LPIPS v0.1 linear heads), or None when not installed."""
    try:
        import lpips
    except ImportError:
        return None
    path = Path(lpips.__file__).parent / "weights" / "v0.1" / "vgg.pth"
    return path if path.is_file() else None


def unit_normalise(x: torch.Tensor) -> torch.Tensor:
    """Divide each pixel's feature vector (dim 1) by its L2 norm."""
    return x / (x.pow(2).sum(1, keepdim=True).sqrt() + NORM_EPS)


def lpisl_from_features(a: list[torch.Tensor], b: list[torch.Tensor], theta: list[torch.Tensor]) -> torch.Tensor:
    """Sum over layers of the theta-weighted squared distance of unit-normalised features, pixel-averaged.

    theta[i]: non-negative per-channel weights (C_i,). Returns the batch mean, a scalar >= 0.
    """
    total = a[0].new_zeros((), dtype=torch.float32)
    for fa, fb, w in zip(a, b, theta, strict=True):
        fa, fb = fa.float(), fb.float()  # normalisation in float32, also under autocast
        d = (unit_normalise(fa) - unit_normalise(fb)).pow(2) * w.view(1, -1, 1, 1)
        total = total + d.sum(1).mean()
    return total


class LPISLoss(nn.Module):
    """``forward(derained, clean)`` -> scalar >= 0, 0 when derained == clean. Inputs RGB in [0,1]."""

    def __init__(self, vgg_weights: Path | str | None = None, extractor: FrozenExtractor | None = None) -> None:
        super().__init__()
        self.extractor = extractor or perceptual_extractor(vgg_weights, layers=5)
        heads = lpips_heads_file() if isinstance(self.extractor, VGG16Features) else None
        if heads is not None and len(self.extractor.channels) == 5:
            state = torch.load(heads, map_location="cpu", weights_only=True)
            theta = [state[f"lin{i}.model.1.weight"].flatten().float() for i in range(5)]
            self.heads_name = "LPIPS v0.1 VGG linear heads (PyPI lpips)"
        else:
            theta = [torch.ones(c) for c in self.extractor.channels]
            self.heads_name = "uniform channel weights (no learned LPIPS heads for this backbone)"
        for i, t in enumerate(theta):
            self.register_buffer(f"theta{i}", t, persistent=False)
        self.layers = len(theta)

    @property
    def theta(self) -> list[torch.Tensor]:
        return [getattr(self, f"theta{i}") for i in range(self.layers)]

    @property
    def backbone_name(self) -> str:
        return f"{self.extractor.name}; {self.heads_name}"

    def forward(self, derained: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.extractor(clean)
        return lpisl_from_features(self.extractor(derained), target, self.theta)
