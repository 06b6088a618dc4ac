"""ESPNet (Mehta et al., ECCV 2018): the encoder ESPNet-C and the full network with its light decoder.

Written for this project from the paper and the module structure of the official code
(github.com/sacmehta/ESPNet, ``test/Model.py``). Module and parameter names are the official ones, so the
authors' checkpoints load with ``load_state_dict(strict=True)``:

    encoder.level1 (conv 3x3 s2 + BN + PReLU), encoder.sample1/sample2 (average-pool pyramids of the image),
    encoder.b1, encoder.level2_0 (strided ESP block), encoder.level2.<i> (p ESP blocks), encoder.b2,
    encoder.level3_0, encoder.level3.<i> (q ESP blocks), encoder.b3, encoder.classifier (1x1 conv),
    level3_C, br, up_l3.0, combine_l2_l3.{0,1}, up_l2.{0,1}, conv, classifier (the decoder).

An ESP block reduces the input with one convolution to ``n = nOut // 5`` channels, applies five parallel
3x3 convolutions with dilations 1, 2, 4, 8, 16 (the first one gets the remainder so the widths add up to
``nOut``), sums the dilated branches hierarchically (2, 2+4, 2+4+8, 2+4+8+16) to avoid gridding artefacts,
concatenates, optionally adds the input, and ends with batch norm (eps 1e-3) and PReLU.

With p=2, q=8 and 20 classes the network has 364,569 learnable parameters (368,341 values in the state dict,
counting batch-norm running statistics). Input: Bx3xHxW with H and W multiples of 8; output: Bx20xHxW logits.
"""

from __future__ import annotations

import torch
from torch import nn

_BN_EPS = 1e-3
_DILATIONS = (1, 2, 4, 8, 16)


def _conv(n_in: int, n_out: int, k: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    """Bias-free k x k convolution with 'same' padding (for odd k)."""
    pad = (k - 1) // 2 * dilation
    return nn.Conv2d(n_in, n_out, k, stride=stride, padding=pad, dilation=dilation, bias=False)


class Conv(nn.Module):
    """A bare convolution (official name ``C``: parameters under ``.conv``)."""

    def __init__(self, n_in: int, n_out: int, k: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv = _conv(n_in, n_out, k, stride, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class BNPReLU(nn.Module):
    """Batch norm then PReLU (official ``BR``: ``.bn``, ``.act``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=_BN_EPS)
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(x))


class ConvBNPReLU(nn.Module):
    """Convolution, batch norm, PReLU (official ``CBR``: ``.conv``, ``.bn``, ``.act``)."""

    def __init__(self, n_in: int, n_out: int, k: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = _conv(n_in, n_out, k, stride)
        self.bn = nn.BatchNorm2d(n_out, eps=_BN_EPS)
        self.act = nn.PReLU(n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class _ESPBranches(nn.Module):
    """Reduce (``c1``), split into five dilated branches (``d1`` ... ``d16``), hierarchical feature fusion."""

    def __init__(self, n_in: int, n_out: int, reduce_kernel: int, reduce_stride: int) -> None:
        super().__init__()
        n = n_out // 5
        first = n_out - 4 * n
        self.c1 = Conv(n_in, n, reduce_kernel, reduce_stride)
        for d in _DILATIONS:
            setattr(self, f"d{d}", Conv(n, first if d == 1 else n, 3, 1, d))

    def branches(self, x: torch.Tensor) -> torch.Tensor:
        reduced = self.c1(x)
        outs = [getattr(self, f"d{d}")(reduced) for d in _DILATIONS]
        fused, acc = [outs[0]], None
        for branch in outs[1:]:
            acc = branch if acc is None else acc + branch
            fused.append(acc)
        return torch.cat(fused, 1)


class StridedESP(_ESPBranches):
    """The down-sampling ESP block (official ``DownSamplerB``): 3x3 stride-2 reduction, BN (``.bn``), PReLU (``.act``)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__(n_in, n_out, reduce_kernel=3, reduce_stride=2)
        self.bn = nn.BatchNorm2d(n_out, eps=_BN_EPS)
        self.act = nn.PReLU(n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.branches(x)))


class ESPBlock(_ESPBranches):
    """The ESP block (official ``DilatedParllelResidualBlockB``): 1x1 reduction, optional residual, ``.bn`` = BN+PReLU."""

    def __init__(self, n_in: int, n_out: int, residual: bool = True) -> None:
        super().__init__(n_in, n_out, reduce_kernel=1, reduce_stride=1)
        self.bn = BNPReLU(n_out)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branches(x)
        return self.bn(x + out if self.residual else out)


class ImagePyramid(nn.Module):
    """The image down-sampled ``times`` times by 3x3 stride-2 average pooling (official ``InputProjectionA``)."""

    def __init__(self, times: int) -> None:
        super().__init__()
        self.pool = nn.ModuleList(nn.AvgPool2d(3, stride=2, padding=1) for _ in range(times))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for pool in self.pool:
            x = pool(x)
        return x


class ESPNetEncoder(nn.Module):
    """ESPNet-C: output at 1/8 of the input resolution (``features`` also returns the intermediate maps)."""

    def __init__(self, classes: int = 20, p: int = 2, q: int = 8) -> None:
        super().__init__()
        self.level1 = ConvBNPReLU(3, 16, 3, 2)
        self.sample1 = ImagePyramid(1)
        self.sample2 = ImagePyramid(2)
        self.b1 = BNPReLU(16 + 3)
        self.level2_0 = StridedESP(16 + 3, 64)
        self.level2 = nn.ModuleList(ESPBlock(64, 64) for _ in range(p))
        self.b2 = BNPReLU(128 + 3)
        self.level3_0 = StridedESP(128 + 3, 128)
        self.level3 = nn.ModuleList(ESPBlock(128, 128) for _ in range(q))
        self.b3 = BNPReLU(256)
        self.classifier = Conv(256, classes, 1, 1)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(level-1 features at 1/2, level-2 features + image at 1/4, 1/8 class scores)."""
        out0 = self.level1(x)
        cat0 = self.b1(torch.cat([out0, self.sample1(x)], 1))
        down1 = self.level2_0(cat0)
        out1 = down1
        for block in self.level2:
            out1 = block(out1)
        cat1 = self.b2(torch.cat([out1, down1, self.sample2(x)], 1))
        down2 = self.level3_0(cat1)
        out2 = down2
        for block in self.level3:
            out2 = block(out2)
        cat2 = self.b3(torch.cat([down2, out2], 1))
        return out0, cat1, self.classifier(cat2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[2]


def _up2(channels: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(channels, channels, 2, stride=2, padding=0, output_padding=0, bias=False)


class ESPNet(nn.Module):
    """ESPNet: the encoder plus the light-weight decoder; logits at the input resolution."""

    def __init__(self, classes: int = 20, p: int = 2, q: int = 8) -> None:
        super().__init__()
        self.encoder = ESPNetEncoder(classes, p, q)
        self.level3_C = Conv(128 + 3, classes, 1, 1)
        self.br = nn.BatchNorm2d(classes, eps=_BN_EPS)
        self.conv = ConvBNPReLU(16 + classes, classes, 3, 1)
        self.up_l3 = nn.Sequential(_up2(classes))
        self.combine_l2_l3 = nn.Sequential(BNPReLU(2 * classes), ESPBlock(2 * classes, classes, residual=False))
        self.up_l2 = nn.Sequential(_up2(classes), BNPReLU(classes))
        self.classifier = _up2(classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        level1, level2, scores3 = self.encoder.features(x)
        up3 = self.up_l3(self.br(scores3))  # 1/8 -> 1/4
        merged = self.combine_l2_l3(torch.cat([self.level3_C(level2), up3], 1))
        up2 = self.up_l2(merged)  # 1/4 -> 1/2
        return self.classifier(self.conv(torch.cat([up2, level1], 1)))  # 1/2 -> 1/1
