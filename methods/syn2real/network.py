"""Syn2Real deraining network: the official ``DeRain_v2`` of rajeevyasarla/Syn2Real ``model.py`` (@ 147d596),
the class its ``test.py`` builds for the released ``*/derain_best`` checkpoints.

An encoder-decoder of Res2Net-style blocks (``Bottle2neckX``: base width 12, cardinality 8, scale 6) at
scales 1, 1/2, 1/4, 1/8. Module names match the official state dict (after removing the DataParallel
``module.`` prefix). Each block carries an ``SE`` squeeze-excitation head that the official forward never
calls; it is kept because its weights are in the checkpoint.

Parameter count of the official definition: 2,618,294 (sum of ``p.numel()`` over ``DeRain_v2()``; the
state dict has 510 entries including batch-norm buffers).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

BASE_WIDTH, CARDINALITY, SCALE = 12, 8, 6


class SEBlock(nn.Module):
    """Squeeze-excitation head (present in the checkpoint, unused by the forward pass)."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels), nn.Sigmoid())


class Bottle2neckX(nn.Module):
    """Pre-activation Res2NeXt block; returns ``cat([x, x + f(x)])`` (2 * planes channels)."""

    def __init__(self, planes: int) -> None:
        super().__init__()
        width = int(math.floor(planes * (BASE_WIDTH / 64.0))) * CARDINALITY
        self.width, self.nums = width, SCALE - 1
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv1 = nn.Conv2d(planes, width * SCALE, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * SCALE)
        self.SE = SEBlock(planes, CARDINALITY)
        self.convs = nn.ModuleList(
            [nn.Conv2d(width, width, 3, 1, 1, groups=CARDINALITY, bias=False) for _ in range(self.nums)]
        )
        self.bns = nn.ModuleList([nn.BatchNorm2d(width) for _ in range(self.nums)])
        self.conv3 = nn.Conv2d(width * SCALE, planes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        splits = torch.split(self.conv1(F.relu(self.bn1(x))), self.width, 1)
        outs = []
        sp = splits[0]
        for i in range(self.nums):
            if i > 0:
                sp = sp + splits[i]
            sp = self.convs[i](F.relu(self.bns[i](sp)))
            outs.append(sp)
        out = torch.cat(outs + [splits[self.nums]], 1)
        out = self.conv3(F.relu(self.bn3(out))) + x
        return torch.cat([x, out], 1)


class Transition(nn.Module):
    """BN, ReLU, 1x1 transposed conv, then x0.5 average pooling ("down"), x2 nearest ("up") or nothing."""

    def __init__(self, in_ch: int, out_ch: int, resample: str = "none") -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = nn.ConvTranspose2d(in_ch, out_ch, 1, 1, 0, bias=False)
        self.resample = resample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        if self.resample == "down":
            return F.avg_pool2d(out, 2)
        if self.resample == "up":
            return F.interpolate(out, scale_factor=2, mode="nearest")
        return out


class Syn2RealNet(nn.Module):
    """forward: Bx3xHxW normalised to [-1,1] (H, W multiples of 8) -> (clean Bx3xHxW in [0,1], latent z)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_input = nn.Conv2d(3, 16, 3, 1, 1)
        self.dense_block1 = Bottle2neckX(16)
        self.trans_block2 = Transition(32, 32, "down")
        self.dense_block2 = Bottle2neckX(32)
        self.trans_block2_o = Transition(64, 32)
        self.trans_block3 = Transition(32, 32, "down")
        self.dense_block3 = Bottle2neckX(32)
        self.trans_block3_o = Transition(64, 64)
        self.trans_block4 = Transition(64, 128, "down")
        self.dense_block4 = Bottle2neckX(128)
        self.trans_block4_o = Transition(256, 128)
        self.dense_block5 = Bottle2neckX(128)
        self.trans_block5_o = Transition(256, 128)
        self.dense_block6 = Bottle2neckX(128)
        self.trans_block6_o = Transition(256, 128)
        self.trans_block7 = Transition(32, 64, "up")
        self.dense_block7 = Bottle2neckX(128)
        self.trans_block7_o = Transition(256, 32)
        self.trans_block8 = Transition(32, 32, "up")
        self.dense_block8 = Bottle2neckX(64)
        self.trans_block8_o = Transition(128, 32)
        self.trans_block9 = Transition(32, 32, "up")
        self.dense_block9 = Bottle2neckX(80)
        self.trans_block9_o = Transition(160, 16)
        self.conv_refin = nn.Conv2d(16, 16, 3, 1, 1)
        self.refine3 = nn.Conv2d(16, 3, 3, 1, 1)
        self.zout = nn.Conv2d(128, 32, 3, 1, 1)
        self.refineclean1 = nn.Conv2d(3, 8, 7, 1, 3)
        self.refineclean2 = nn.Conv2d(8, 3, 3, 1, 1)

    def forward(self, xin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        def lrelu(t: torch.Tensor) -> torch.Tensor:
            return F.leaky_relu(t, 0.2)

        x = self.conv_input(xin)
        x1 = self.dense_block1(x)
        x2 = self.trans_block2_o(self.dense_block2(self.trans_block2(x1)))
        x3 = self.trans_block3_o(self.dense_block3(self.trans_block3(x2)))
        x4 = self.trans_block4_o(self.dense_block4(self.trans_block4(x3)))
        x5 = self.trans_block5_o(self.dense_block5(x4))
        x6 = self.trans_block6_o(self.dense_block6(x5))
        z = self.zout(lrelu(x6))
        x7 = self.trans_block7_o(self.dense_block7(torch.cat([self.trans_block7(z), x3], 1)))
        x8 = self.trans_block8_o(self.dense_block8(torch.cat([self.trans_block8(x7), x2], 1)))
        x9 = self.trans_block9_o(self.dense_block9(torch.cat([self.trans_block9(x8), x1, x], 1)))
        x11 = x - lrelu(self.conv_refin(x9))
        residual = torch.tanh(self.refine3(x11))
        clean = torch.sigmoid(self.refineclean2(lrelu(self.refineclean1(residual))))
        return clean, z
