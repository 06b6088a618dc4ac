"""RESCAN (Li et al., ECCV 2018): recurrent squeeze-and-excitation context aggregation network.

Structure as in the official code (XiaLiPKU/RESCAN ``config/model.py``) in the configuration of the
checkpoints retrained by the BRN authors: 24 channels, depth 7 (a 3->24 recurrent unit with dilation 1,
then four 24->24 units with dilations 1, 2, 4, 8), ConvGRU units, squeeze-and-excitation with a hidden
width of 6 (the official code passes the reduction value as the hidden width), LeakyReLU(0.2), 4 stages.
Each stage predicts the rain layer; the next stage sees ``input - rain``. With ``frame="full"`` each stage
predicts the whole rain layer, with ``frame="add"`` it adds a correction to the previous stage's estimate.
The derained image is ``input - rain`` of the last stage. Parameter names follow the official state dict
(``rnns.<i>.conv_xz.weight``, ``rnns.<i>.se.fc.0.weight``, ``dec.0.weight`` ...).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

Frame = Literal["full", "add"]


class SqueezeExcitation(nn.Module):
    """Channel attention: global average -> Linear(c, hidden) -> ReLU -> Linear(hidden, c) -> sigmoid."""

    def __init__(self, channels: int, hidden: int = 6) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True),
                                nn.Linear(hidden, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.fc(x.mean(dim=(2, 3)))
        return x * weights[:, :, None, None]


class ConvGRUUnit(nn.Module):
    """Convolutional GRU whose input convolutions are dilated and hidden-state convolutions are not,
    followed by squeeze-and-excitation and LeakyReLU(0.2) (the output is also the next state)."""

    def __init__(self, in_channels: int, channels: int, dilation: int, kernel_size: int = 3) -> None:
        super().__init__()
        pad_x = dilation * (kernel_size - 1) // 2
        pad_h = (kernel_size - 1) // 2

        def conv_x() -> nn.Conv2d:
            return nn.Conv2d(in_channels, channels, kernel_size, padding=pad_x, dilation=dilation)

        def conv_h() -> nn.Conv2d:
            return nn.Conv2d(channels, channels, kernel_size, padding=pad_h)

        self.conv_xz, self.conv_xr, self.conv_xn = conv_x(), conv_x(), conv_x()
        self.conv_hz, self.conv_hr, self.conv_hn = conv_h(), conv_h(), conv_h()
        self.se = SqueezeExcitation(channels)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        if h is None:  # first stage: no reset gate, the state starts at zero
            h = torch.sigmoid(self.conv_xz(x)) * torch.tanh(self.conv_xn(x))
        else:
            z = torch.sigmoid(self.conv_xz(x) + self.conv_hz(h))
            r = torch.sigmoid(self.conv_xr(x) + self.conv_hr(h))
            n = torch.tanh(self.conv_xn(x) + self.conv_hn(r * h))
            h = (1 - z) * h + z * n
        return self.act(self.se(h))


class RESCANNetwork(nn.Module):
    """RESCAN with ConvGRU units. Input: Bx3xHxW in [0,1] (channel order as trained: BGR for the BRN
    checkpoints); output: the derained image of the last stage, same shape, not clamped."""

    def __init__(self, channels: int = 24, depth: int = 7, stages: int = 4, frame: Frame = "full") -> None:
        super().__init__()
        if depth < 3:
            raise ValueError(f"RESCANNetwork: depth must be >= 3, got {depth}")
        if frame not in ("full", "add"):
            raise ValueError(f"RESCANNetwork: frame must be 'full' or 'add', got {frame!r}")
        self.stages = stages
        self.frame = frame
        self.rnns = nn.ModuleList(
            [ConvGRUUnit(3, channels, 1)] + [ConvGRUUnit(channels, channels, 2**i) for i in range(depth - 3)]
        )
        self.dec = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            SqueezeExcitation(channels),
            nn.LeakyReLU(0.2),
            nn.Conv2d(channels, 3, 1),
        )

    def rain_layers(self, image: torch.Tensor) -> list[torch.Tensor]:
        """The rain layer estimated after each stage (list of ``stages`` Bx3xHxW tensors)."""
        states: list[torch.Tensor | None] = [None] * len(self.rnns)
        rains: list[torch.Tensor] = []
        x = image
        for stage in range(self.stages):
            for i, unit in enumerate(self.rnns):
                x = unit(x, states[i])
                states[i] = x
            rain = self.dec(x)
            if self.frame == "add" and stage > 0:
                rain = rain + rains[-1]
            rains.append(rain)
            x = image - rain
        return rains

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return image - self.rain_layers(image)[-1]
