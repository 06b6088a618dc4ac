"""EfficientDerain network (official ``KPN`` of tsingqguo/efficientderain ``network.py``), test configuration.

Configuration used by the official test script (validation.py defaults): colour input, burst length 1,
blind estimation, kernel size [3], no separable kernels, no channel/spatial attention, bilinear up-sampling,
no core bias. Names match the official state dict, so the released ``v3_*.pth`` / ``v4_*.pth`` load strictly.

Parameter count of that configuration: 27,395,406 (sum of ``p.numel()`` over the official module). By hand,
each ``Basic`` block is three biased 3x3 convolutions in->out, out->out, out->out:
conv1 3->64, conv2 64->128, conv3 128->256, conv4 256->512, conv5 512->512, conv6 1024->512, conv7 768->256,
conv8 384->27, plus ``outc`` (1x1, 27->27) and ``conv_final`` (3x3, 12->3).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

KERNEL = 3  # per-pixel kernel size
RATES = (1, 2, 3, 4)  # dilation rates of the four filtered images


class Basic(nn.Module):
    """Three 3x3 conv + ReLU layers (the official ``Basic`` without attention)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(out_ch, out_ch, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(out_ch, out_ch, 3, 1, 1), nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1(x)


def dilated_pixel_filter(image: torch.Tensor, kernels: torch.Tensor, rate: int) -> torch.Tensor:
    """Apply a different KxK kernel at every pixel, with taps ``rate`` pixels apart (zero padding).

    image: Bx3xHxW; kernels: Bx(3*K*K)xHxW laid out colour-major (channel c*K*K + tap); returns Bx3xHxW.
    """
    b, c, h, w = image.shape
    pad = (KERNEL // 2) * rate
    padded = F.pad(image, [pad, pad, pad, pad])
    taps = [padded[..., i * rate : i * rate + h, j * rate : j * rate + w] for i in range(KERNEL) for j in range(KERNEL)]
    stack = torch.stack(taps, dim=2)  # B x 3 x K*K x H x W
    return (kernels.view(b, c, KERNEL * KERNEL, h, w) * stack).sum(dim=2)


class EfficientDerainNet(nn.Module):
    """U-Net kernel predictor + four dilated pixel-wise filterings fused by a 3x3 conv.

    forward: Bx3xHxW RGB in [0,1], H and W multiples of 16 -> Bx3xHxW (not clamped).
    """

    def __init__(self) -> None:
        super().__init__()
        out_channel = 3 * KERNEL * KERNEL
        self.conv1 = Basic(3, 64)
        self.conv2 = Basic(64, 128)
        self.conv3 = Basic(128, 256)
        self.conv4 = Basic(256, 512)
        self.conv5 = Basic(512, 512)
        self.conv6 = Basic(512 + 512, 512)
        self.conv7 = Basic(256 + 512, 256)
        self.conv8 = Basic(256 + 128, out_channel)
        self.outc = nn.Conv2d(out_channel, out_channel, 1, 1, 0)
        self.conv_final = nn.Conv2d(3 * len(RATES), 3, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def up(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, scale_factor=2, mode="bilinear")

        c1 = self.conv1(x)
        c2 = self.conv2(F.avg_pool2d(c1, 2, 2))
        c3 = self.conv3(F.avg_pool2d(c2, 2, 2))
        c4 = self.conv4(F.avg_pool2d(c3, 2, 2))
        c5 = self.conv5(F.avg_pool2d(c4, 2, 2))
        c6 = self.conv6(torch.cat([c4, up(c5)], 1))
        c7 = self.conv7(torch.cat([c3, up(c6)], 1))
        c8 = self.conv8(torch.cat([c2, up(c7)], 1))
        kernels = self.outc(up(c8))
        filtered = [dilated_pixel_filter(x, kernels, rate) for rate in RATES]
        return self.conv_final(torch.cat(filtered, 1))
