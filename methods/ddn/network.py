"""DDN (Fu et al., "Removing rain from single images via a deep detail network", CVPR 2017).

What the official release computes (XMU-smartdsp/Removing_Rain: ``demo.m`` with ``processing.p`` and
``network.mat``), established from ``demo.m`` and from the batch-norm moments stored in ``network.mat``
(each layer's stored mean/variance matches the statistics of the tensor it normalises only in the
arrangement below):

1. base = fast guided filter of each RGB channel guided by itself (r=16, eps=1, s=4, on [0,1] values);
   detail = input - base.
2. The network sees ``255 * detail``:
   - head: conv 3->16, batch norm (+ scale), ReLU;
   - 12 pre-activation residual blocks: x + conv(ReLU(BN(conv(ReLU(BN(x)))))), 16 channels;
   - tail: conv 16->3, batch norm (+ scale): the negative residual, in 0..255 units.
3. output = input + residual / 255.

Batch norm uses the stored moments (Caffe layout: mean*f, var*f and f) with Caffe's epsilon 1e-5.
All convolutions are 3x3 with zero padding 1.
"""

from __future__ import annotations

import torch
from torch import nn

from methods.ddn.guided_filter import fast_guided_filter

CHANNELS = 16
BLOCKS = 12
BN_EPS = 1e-5  # Caffe's default; the release was converted from Caffe (BatchNorm + Scale layers)
#: guided filter of the official demo: radius (px), regulariser (on [0,1] intensities), subsampling
GUIDED_RADIUS, GUIDED_EPS, GUIDED_SUBSAMPLE = 16, 1.0, 4
INPUT_SCALE = 255.0  # the network works on 0..255 detail values


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class PreActivationBlock(nn.Module):
    """x + conv2(ReLU(bn2(conv1(ReLU(bn1(x))))))."""

    def __init__(self, channels: int = CHANNELS) -> None:
        super().__init__()
        self.bn1, self.conv1 = _bn(channels), _conv(channels, channels)
        self.bn2, self.conv2 = _bn(channels), _conv(channels, channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(self.relu(self.bn1(x)))
        y = self.conv2(self.relu(self.bn2(y)))
        return x + y


class DetailNetwork(nn.Module):
    """The 26-layer network: 255 * detail layer (Bx3xHxW) -> negative residual in 0..255 units."""

    def __init__(self) -> None:
        super().__init__()
        self.head_conv, self.head_bn = _conv(3, CHANNELS), _bn(CHANNELS)
        self.blocks = nn.Sequential(*(PreActivationBlock() for _ in range(BLOCKS)))
        self.tail_conv, self.tail_bn = _conv(CHANNELS, 3), _bn(3)

    def forward(self, detail: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.head_bn(self.head_conv(detail)))
        return self.tail_bn(self.tail_conv(self.blocks(x)))

    def layer_slots(self) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
        """(conv, batch norm) for each of the 26 layers in the release's order: layer i's batch norm
        follows its conv for the head (0) and the tail (25) and precedes it inside the blocks (1..24)."""
        slots = [(self.head_conv, self.head_bn)]
        for block in self.blocks:
            slots += [(block.conv1, block.bn1), (block.conv2, block.bn2)]
        return slots + [(self.tail_conv, self.tail_bn)]


def split_base_detail(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """image: Bx3xHxW in [0,1] -> (base, detail), float64, base = per-channel self-guided filter."""
    base = fast_guided_filter(image, image, GUIDED_RADIUS, GUIDED_EPS, GUIDED_SUBSAMPLE)
    return base, image.double() - base


class DDNNetwork(nn.Module):
    """Full DDN: RGB Bx3xHxW in [0,1] -> derained RGB (not clamped)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = DetailNetwork()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        _, detail = split_base_detail(image)
        residual = self.net((detail * INPUT_SCALE).to(image.dtype))
        return image + residual / INPUT_SCALE
