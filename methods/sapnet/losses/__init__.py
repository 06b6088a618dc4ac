"""SAPNet's training losses (paper eq. 1-5): ``L = 1 * L_ssim + 0.1 * L_seg + 0.1 * L_pcl + 0.1 * L_lpisl``.

:class:`SAPNetLoss` combines them; each term can be weighted or switched off (weight 0) for ablations.
The perceptual terms share one frozen feature extractor, computed once per image.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from methods.sapnet.losses.contrastive_loss import (
    PerceptualContrastiveLoss,
    contrastive_from_features,
)
from methods.sapnet.losses.feature_backbones import perceptual_extractor
from methods.sapnet.losses.lpisl import LPISLoss, lpisl_from_features
from methods.sapnet.losses.segmentation_loss import SegmentationLoss, focal_loss
from methods.sapnet.losses.ssim_loss import NegativeSSIMLoss, ssim

__all__ = [
    "LPISLoss",
    "LossWeights",
    "NegativeSSIMLoss",
    "PerceptualContrastiveLoss",
    "SAPNetLoss",
    "SegmentationLoss",
    "focal_loss",
    "ssim",
]


@dataclass(frozen=True)
class LossWeights:
    """Weight of each term in the total loss; 0 switches a term off (its network is then not built)."""

    ssim: float = 1.0
    seg: float = 0.1
    pcl: float = 0.1
    lpisl: float = 0.1


class SAPNetLoss(nn.Module):
    """Total SAPNet loss. ``forward(derained, clean, rainy)`` -> (total scalar, {term: detached value}).

    derained, clean, rainy: float Bx3xHxW RGB in [0,1]. ``use_seg=False`` skips the segmentation term for
    this call (the official code enables it only late in training). ``backbones`` names the networks used.
    """

    def __init__(self, weights: LossWeights = LossWeights(), vgg_weights: Path | str | None = None,
                 resnet_weights: Path | str | None = None, seed: int = 0) -> None:
        super().__init__()
        self.weights = weights
        self.ssim_loss = NegativeSSIMLoss()
        self.seg_loss = SegmentationLoss(resnet_weights, seed=seed) if weights.seg else None
        self.pcl_loss: PerceptualContrastiveLoss | None = None
        self.lpisl_loss: LPISLoss | None = None
        if weights.pcl or weights.lpisl:
            extractor = perceptual_extractor(vgg_weights, layers=5 if weights.lpisl else 4)
            if weights.pcl:
                self.pcl_loss = PerceptualContrastiveLoss(extractor=extractor)
            if weights.lpisl:
                self.lpisl_loss = LPISLoss(extractor=extractor)
            self.extractor = extractor

    @property
    def backbones(self) -> dict[str, str]:
        """Which frozen network each active term uses (for logs and model cards)."""
        out: dict[str, str] = {}
        if self.seg_loss is not None:
            out["seg"] = self.seg_loss.backbone_name
        if self.pcl_loss is not None:
            out["pcl"] = self.pcl_loss.backbone_name
        if self.lpisl_loss is not None:
            out["lpisl"] = self.lpisl_loss.backbone_name
        return out

    def describe(self) -> dict[str, object]:
        return {"weights": asdict(self.weights), "backbones": self.backbones}

    def forward(self, derained: torch.Tensor, clean: torch.Tensor, rainy: torch.Tensor,
                use_seg: bool = True) -> tuple[torch.Tensor, dict[str, float]]:
        w = self.weights
        terms: dict[str, torch.Tensor] = {"ssim": self.ssim_loss(derained, clean)}
        if self.seg_loss is not None and use_seg:
            terms["seg"] = self.seg_loss(derained)
        if self.pcl_loss is not None or self.lpisl_loss is not None:
            feats = self.extractor(derained)
            with torch.no_grad():
                clean_feats = self.extractor(clean)
            if self.pcl_loss is not None:
                with torch.no_grad():
                    rainy_feats = self.extractor(rainy)
                terms["pcl"] = contrastive_from_features(feats, clean_feats, rainy_feats)
            if self.lpisl_loss is not None:
                terms["lpisl"] = lpisl_from_features(feats, clean_feats, self.lpisl_loss.theta)
        total = sum(getattr(w, name) * value for name, value in terms.items())
        return total, {name: float(value.detach()) for name, value in terms.items()}  # type: ignore[return-value]
