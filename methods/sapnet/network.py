"""SAPNet deraining network (Zheng et al., WACV 2022): a PReNet-style progressive recurrent network whose
residual units use progressive dilations and channel residual attention.

Structure (6 weight-shared stages, 180,483 parameters): ``cat(rainy, estimate)`` -> 3x3 conv 6->32 + ReLU ->
ConvLSTM -> 5 :class:`ProgressiveDilatedUnit` with dilations 1, 2, 4, 8, 16 -> 3x3 conv 32->3, added to the
rainy image. Parameter names match the official checkpoints (after stripping DataParallel's ``module.``),
so they load with ``strict=True``.

Ablation switches (paper, Table 2): ``use_cra=False`` drops the attention layers (168,963 parameters, the
PReNet count); ``use_dilation=False`` uses dilation 1 in every unit (same parameters, smaller receptive field);
``stages`` sets the number of recurrent stages.
"""

from __future__ import annotations

import torch
from torch import nn

from methods.prenet.networks import FEATURES, ProgressiveRecurrentNet, ResidualUnit

DILATIONS = (1, 2, 4, 8, 16)  # one per progressive dilated unit


class ChannelResidualAttention(nn.Module):
    """Channel residual attention (CRA): rescales each channel of ``x`` by a weight in (0, 1).

    The weight is ``sigmoid(conv_du(p) + conv_1_1(p))`` with ``p`` the global average of each channel,
    ``conv_du`` = 1x1 conv C -> C/reduction, ReLU, 1x1 conv back to C, and ``conv_1_1`` a 1x1 conv C -> C
    (the residual branch). No biases.
    """

    def __init__(self, channels: int = FEATURES, reduction: int = 16) -> None:
        super().__init__()
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1, bias=False),
            nn.ReLU(),
            nn.Conv2d(channels // reduction, channels, 1, bias=False),
        )
        self.conv_1_1 = nn.Conv2d(channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: BxCxHxW features -> same shape.

        In evaluation a batch is weighted one image at a time: the 1x1 convs on a Bx32x1x1 batch run as one
        matrix product whose sums differ in the last bit from an image's own, so a batch would not give
        exactly the output of its images run alone (it costs nothing: the pooled vectors are tiny)."""
        pooled = x.mean(dim=(2, 3), keepdim=True)
        if self.training or x.shape[0] == 1:
            return x * torch.sigmoid(self.conv_du(pooled) + self.conv_1_1(pooled))
        weights = [torch.sigmoid(self.conv_du(p) + self.conv_1_1(p)) for p in pooled.split(1)]
        return x * torch.cat(weights)


class ProgressiveDilatedUnit(ResidualUnit):
    """Residual unit ``relu(body(x) + x)`` with body = dilated 3x3 conv -> CRA -> ReLU -> dilated 3x3 conv
    -> CRA -> ReLU (padding = dilation, so the size is kept). Without CRA it is PReNet's residual unit
    with dilated convs.
    """

    def __init__(self, dilation: int = 1, use_cra: bool = True, channels: int = FEATURES) -> None:
        layers: list[nn.Module] = []
        for _ in range(2):
            layers.append(nn.Conv2d(channels, channels, 3, 1, padding=dilation, dilation=dilation))
            if use_cra:
                layers.append(ChannelResidualAttention(channels))
            layers.append(nn.ReLU())
        super().__init__(*layers)
        self.dilation = dilation
        self.use_cra = use_cra


class SAPNetwork(ProgressiveRecurrentNet):
    """SAPNet's deraining network.

    use_cra: channel residual attention after every dilated conv (default True, as released).
    use_dilation: dilations 1, 2, 4, 8, 16 in the five units (default True); False gives dilation 1 everywhere.
    stages: number of weight-shared recurrent stages (default 6).

    ``forward(rainy)`` returns the last stage's estimate (float32 Bx3xHxW, not clamped);
    ``forward(rainy, return_all=True)`` returns every stage's estimate, last one last.
    """

    def __init__(self, use_cra: bool = True, use_dilation: bool = True, stages: int = 6) -> None:
        dilations = DILATIONS if use_dilation else (1,) * len(DILATIONS)
        units = [ProgressiveDilatedUnit(d, use_cra=use_cra) for d in dilations]
        super().__init__(units, stages=stages, lstm="before")
        self.use_cra = use_cra
        self.use_dilation = use_dilation
