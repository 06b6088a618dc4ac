"""MOSS deraining network: the official ``NetG`` of hhb072/MOSS ``networks.py`` (@ 4fd64e4) with the
``test.yaml`` configuration (ngf 16, 5 blocks, 3 scales, 4 layers per block, delta 16, 512 memory units).

Module names match the official state dict, so the released ``ddn_ssir.pth`` loads strictly.
Parameter count of the official definition with that configuration: 2,855,939 (sum of ``p.numel()`` over
``NetG(config)``; 126 state-dict entries including the batch-norm buffers of the fuse blocks).

Note the official quirk kept here: ``make_layer`` passes ``nn.BatchNorm2d`` positionally into the residual
block's ``wide_width`` argument, which is therefore always true (middle width = max(in, out)).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class MossConfig:
    """Architecture hyper-parameters (official test.yaml)."""

    ngf: int = 16
    num_blocks: int = 5
    num_scales: int = 3
    num_layers: int = 4
    delta: int = 16
    kdim: int = 512
    moving_average_rate: float = 0.999


class ResidualBlock(nn.Module):
    """conv3x3 - LeakyReLU(0.02) - conv3x3 plus a (1x1-projected) identity; optional x2 bilinear up-sampling
    before and x0.5 average pooling after."""

    def __init__(self, in_planes: int, out_planes: int, downsample: bool = False, upsample: bool = False) -> None:
        super().__init__()
        self.downsample, self.upsample = downsample, upsample
        middle = max(in_planes, out_planes)
        self.conv1 = nn.Conv2d(in_planes, middle, 3, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(middle, out_planes, 3, 1, 1, bias=False)
        self.translation = nn.Conv2d(in_planes, out_planes, 1, 1, 0, bias=False) if in_planes != out_planes else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        out = self.conv2(F.leaky_relu(self.conv1(x), 0.02))
        out = out + (self.translation(x) if self.translation is not None else x)
        return F.avg_pool2d(out, 2) if self.downsample else out


def make_layer(blocks: int, in_planes: int, out_planes: int, downsample: bool = False, upsample: bool = False) -> nn.Sequential:
    layers = [ResidualBlock(in_planes, out_planes, downsample, upsample)]
    layers += [ResidualBlock(out_planes, out_planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class MemoryBlock(nn.Module):
    """Memory of ``kdim`` prototype vectors; every feature vector is replaced by a softmax-weighted mix of them.

    As in the official code the forward pass (training or not) first computes a moving-average update of the
    memory from the current batch's nearest-unit assignments and reads from the updated memory; only in
    training mode is the update stored. The output therefore depends on every pixel of the batch: run one
    image per call to reproduce the official test (batch size 1).
    """

    def __init__(self, hdim: int, kdim: int, moving_average_rate: float) -> None:
        super().__init__()
        self.c, self.k, self.moving_average_rate = hdim, kdim, moving_average_rate
        self.units = nn.Embedding(kdim, hdim)

    def updated_memory(self, x: torch.Tensor, score: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(score.argmax(dim=1), self.k).to(x.dtype)  # (n, k)
        mean = (x.detach().t() @ onehot) / (onehot.sum(0) + 1e-6)  # (c, k)
        new = m * self.moving_average_rate + mean.t() * (1 - self.moving_average_rate)
        if self.training:
            self.units.weight.data = new
        return new

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, h, w = x.shape
        flat = x.permute(0, 2, 3, 1).reshape(-1, c)
        m = self.units.weight.data
        xn = F.normalize(flat, dim=1)
        score = xn @ F.normalize(m, dim=1).t()
        m = self.updated_memory(flat, score, m)
        score = xn @ F.normalize(m, dim=1).t()
        out = F.softmax(score, dim=1) @ m
        return out.view(b, h, w, c).permute(0, 3, 1, 2), score


class FuseBlock(nn.Module):
    """Fuse a decoder feature with the encoder skip: a gated mix of a feature-conditioned and a learned affine
    modulation of the (non-affine) batch-normalised skip."""

    def __init__(self, x_dim: int, res_dim: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(res_dim, affine=False)
        self.alpha = nn.Conv2d(res_dim, 1, 1, 1, 0, bias=False)
        self.gamma = nn.Conv2d(x_dim, res_dim, 1, 1, 0, bias=False)
        self.beta = nn.Conv2d(x_dim, res_dim, 1, 1, 0, bias=False)
        self.affine_gamma = nn.Parameter(torch.zeros(1, res_dim, 1, 1))
        self.affine_beta = nn.Parameter(torch.zeros(1, res_dim, 1, 1))
        nn.init.zeros_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: torch.Tensor, res: torch.Tensor) -> torch.Tensor:
        res = self.norm(res)
        out0 = res * (self.gamma(x) + 1) + self.beta(x)
        out1 = res * (self.affine_gamma + 1) + self.affine_beta
        alpha = torch.sigmoid(self.alpha(res))
        if self.training:
            alpha = alpha * torch.rand((res.shape[0], 1, 1, 1), device=res.device).gt(0.2).float()
        return (1 - alpha) * out0 + alpha * out1


class MossNet(nn.Module):
    """forward: Bx3xHxW in [-1,1] (H, W multiples of 2**num_scales) -> Bx3xHxW in [-1,1] (tanh)."""

    def __init__(self, config: MossConfig = MossConfig()) -> None:
        super().__init__()
        self.num_blocks = config.num_blocks
        self.head = nn.Conv2d(3, config.ngf, 3, 1, 1, bias=False)
        cc = config.ngf
        self.enc = nn.ModuleDict()
        for i in range(config.num_blocks):
            self.enc[f"enc{i}"] = make_layer(config.num_layers, cc, cc + config.delta, downsample=i < config.num_scales)
            cc += config.delta
        self.memory = MemoryBlock(cc, config.kdim, config.moving_average_rate)
        self.dec = nn.ModuleDict()
        self.fuse = nn.ModuleDict()
        for i in range(config.num_blocks):
            upsample = i > config.num_blocks - config.num_scales - 1
            self.dec[f"dec{i}"] = make_layer(config.num_layers, cc, cc - config.delta, upsample=upsample)
            cc -= config.delta
            if i < config.num_blocks - 1:
                self.fuse[f"fuse{i}"] = FuseBlock(cc, cc)
        self.tail = nn.Conv2d(config.ngf, 3, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        xi = x
        skips = []
        for i in range(self.num_blocks):
            x = self.enc[f"enc{i}"](x)
            skips.append(x)
        x, _ = self.memory(x)
        skips = skips[::-1]
        x = self.dec["dec0"](x)
        for i in range(self.num_blocks - 1):
            x = self.fuse[f"fuse{i}"](x, skips[i + 1])
            x = self.dec[f"dec{i + 1}"](x)
        return torch.tanh(self.tail(xi - x))
