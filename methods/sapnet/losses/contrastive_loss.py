"""Perceptual contrastive loss (SAPNet eq. 3).

With frozen ImageNet features V at four layers (VGG-16 relu1_2, relu2_2, relu3_3, relu4_3; offline, four
EfficientNet-Lite0 stages at 1/2 .. 1/16), the derained image is pulled towards the clean one (positive)
and pushed away from the rainy input (negative):

    L = sum_i w_i * L1(V_i(derained), V_i(clean)) / (L1(V_i(derained), V_i(rainy)) + 1e-7),
    w = 1/32, 1/16, 1/8, 1/4 (finest layer first); L1 is the mean absolute difference.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from methods.sapnet.losses.feature_backbones import (
    FrozenExtractor,
    perceptual_extractor,
)

LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4)
EPS = 1e-7


def contrastive_from_features(anchor: list[torch.Tensor], positive: list[torch.Tensor],
                              negative: list[torch.Tensor],
                              weights: tuple[float, ...] = LAYER_WEIGHTS) -> torch.Tensor:
    """Weighted sum over layers of L1(anchor, positive) / (L1(anchor, negative) + 1e-7); extra layers ignored."""
    total = anchor[0].new_zeros((), dtype=torch.float32)
    for w, a, p, n in zip(weights, anchor, positive, negative, strict=True):
        a, p, n = a.float(), p.float(), n.float()  # ratios in float32, also under autocast
        total = total + w * (a - p).abs().mean() / ((a - n).abs().mean() + EPS)
    return total


class PerceptualContrastiveLoss(nn.Module):
    """``forward(derained, clean, rainy)`` -> scalar >= 0 (0 when derained == clean). Inputs RGB in [0,1]."""

    def __init__(self, vgg_weights: Path | str | None = None, extractor: FrozenExtractor | None = None) -> None:
        super().__init__()
        self.extractor = extractor or perceptual_extractor(vgg_weights, layers=4)

    @property
    def backbone_name(self) -> str:
        return self.extractor.name

    def forward(self, derained: torch.Tensor, clean: torch.Tensor, rainy: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            positive = self.extractor(clean)
            negative = self.extractor(rainy)
        return contrastive_from_features(self.extractor(derained), positive, negative)
