"""Unsupervised background segmentation (UBS) loss (SAPNet eq. 2).

A frozen semantic segmentation network looks at the derained image; its own per-pixel argmax is the
target and the focal loss (gamma 2) of its prediction against that target is minimised, which pushes the
deraining network towards outputs that the segmenter labels confidently. No labels are involved.

The segmenter is an FPN head (Kirillov et al. layout as in the official code: lateral 1x1 convs to 256
channels, top-down sum, two 3x3 smoothing convs 256 -> 256 -> 128 per level, the four levels upsampled to
1/4 resolution and concatenated, a 3x3 classifier to 21 classes; no activations; weights drawn from
N(0, 0.01), biases 0) on an ImageNet backbone (ResNet-101, or EfficientNet-Lite0 offline: see
:mod:`feature_backbones`). The official code builds a new random head at every call; here the head is
drawn once from a fixed seed, so the loss is deterministic. The segmenter is frozen: gradients reach
only the deraining network.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from methods.sapnet.losses.feature_backbones import (
    FrozenExtractor,
    freeze,
    segmentation_extractor,
)

NUM_CLASSES = 21  # PASCAL VOC classes + background, as in the paper


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Mean focal loss ``-(1 - p_t)^gamma log p_t`` over all pixels.

    logits: float BxKxHxW class scores; target: int64 BxHxW class indices in [0, K).
    """
    log_p = F.log_softmax(logits.float(), dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
    return (-((1.0 - log_p.exp()) ** gamma) * log_p).mean()


class FPNHead(nn.Module):
    """FPN segmentation head over four feature levels (1/4 .. 1/32) -> K class maps at 1/4 resolution."""

    def __init__(self, in_channels: tuple[int, int, int, int], num_classes: int = NUM_CLASSES,
                 width: int = 256, smooth_width: int = 128, seed: int = 0) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in in_channels)
        self.smooth = nn.ModuleList(
            nn.Sequential(nn.Conv2d(width, width, 3, 1, 1), nn.Conv2d(width, smooth_width, 3, 1, 1))
            for _ in in_channels
        )
        self.classify = nn.Conv2d(smooth_width * len(in_channels), num_classes, 3, 1, 1)
        generator = torch.Generator().manual_seed(seed)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                with torch.no_grad():
                    module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * 0.01)
                    module.bias.zero_()

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        """levels: features at 1/4, 1/8, 1/16, 1/32 (finest first) -> BxKx(H/4)x(W/4) logits."""
        top_down: list[torch.Tensor] = []
        p = None
        for feature, lateral in zip(reversed(levels), reversed(self.lateral), strict=True):
            lat = lateral(feature)
            p = lat if p is None else F.interpolate(p, size=lat.shape[-2:], mode="bilinear", align_corners=False) + lat
            top_down.append(p)
        top_down.reverse()  # finest first again
        size = top_down[0].shape[-2:]
        maps = [
            F.interpolate(smooth(p), size=size, mode="bilinear", align_corners=False) if i else smooth(p)
            for i, (p, smooth) in enumerate(zip(top_down, self.smooth, strict=True))
        ]
        return self.classify(torch.cat(maps, 1))


class SegmentationNet(nn.Module):
    """Frozen segmenter: ImageNet backbone + randomly initialised FPN head. Input RGB in [0,1]."""

    def __init__(self, backbone: FrozenExtractor, num_classes: int = NUM_CLASSES, seed: int = 0) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = freeze(FPNHead(tuple(backbone.channels), num_classes, seed=seed))  # type: ignore[arg-type]
        self.name = f"FPN head ({num_classes} classes, seed {seed}) on {backbone.name}"

    def train(self, mode: bool = True) -> SegmentationNet:
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: Bx3xHxW RGB in [0,1] -> BxKx(H/4)x(W/4) logits."""
        return self.head(self.backbone(x))


class SegmentationLoss(nn.Module):
    """UBS loss: focal loss (gamma 2) of the frozen segmenter's prediction on the derained image against
    its own argmax. Scalar >= 0. ``backbone_name`` says which ImageNet backbone is in use.
    """

    def __init__(self, resnet_weights: Path | str | None = None, gamma: float = 2.0, seed: int = 0,
                 segmenter: SegmentationNet | None = None) -> None:
        super().__init__()
        self.segmenter = segmenter or SegmentationNet(segmentation_extractor(resnet_weights), seed=seed)
        self.gamma = gamma

    @property
    def backbone_name(self) -> str:
        return self.segmenter.name

    def forward(self, derained: torch.Tensor) -> torch.Tensor:
        logits = self.segmenter(derained)
        return focal_loss(logits, logits.detach().argmax(1), self.gamma)
