"""EfficientDerain plugin: the six released checkpoints (v3 / v4 on Rain100H, Rain1400, SPA)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.methods.api import DerainMethod, MethodInfo, Variant, WeightsFile
from methods.effderain.network import EfficientDerainNet

ZIP_URL = "http://www.xujuefei.com/models_effderain.zip"
DRIVE_URL = "https://drive.google.com/file/d/1OBAIG4su6vIPEimTX7PNuQTxZDjtCUD8/view?usp=sharing"
BAIDU_URL = "https://pan.baidu.com/s/1kFWP-b3tD8Ms7VCBj9f1kw (code vr3g)"
TRAIN_SETS = {"rain100h": ("rain100H", "Rain100H train (RainTrainH, 1800 pairs)"),
              "rain1400": ("rain1400", "Rain1400 train (Rain12600, 12,600 pairs)"),
              "spa": ("SPA", "SPA-Data train (real rain, ~640k patches)")}


def _variant(version: str, key: str) -> Variant:
    tag, trained_on = TRAIN_SETS[key]
    filename = f"{version}_{tag}.pth"
    return Variant(
        weights=(
            WeightsFile(
                filename,
                url=None,
                how_to_get=(
                    f"The authors publish all six checkpoints in one archive: {ZIP_URL} "
                    f"(mirrors: {DRIVE_URL}, {BAIDU_URL}). Unzip it and place {filename} "
                    f"(inside the archive at {version}_{tag}/{filename}) in <weights_dir>/effderain/."
                ),
            ),
        ),
        description=f"EfficientDerain {version} ({'with RainMix augmentation' if version == 'v4' else 'no RainMix'})",
        trained_on=trained_on,
    )


class EffDerain(DerainMethod):
    """EfficientDerain (Guo et al., AAAI 2021).

    Pre/post-processing as the official ``validation.py``: the image is resized (bilinear, half-pixel
    centres as cv2.resize) up to the next multiple of 16 in each dimension, run through the network with
    no normalisation (RGB in [0,1]), clamped to [0,1] and resized back to its original size. The official
    script quantises to uint8 (truncation) before resizing back; here the resize is done in float.
    """

    info = MethodInfo(
        name="effderain",
        display_name="EffDerain",
        paper="EfficientDeRain: Learning Pixel-wise Dilation Filtering for High-Efficiency Single-Image Deraining",
        year=2021,
        kind="learned",
        description="kernel prediction network; per-pixel 3x3 filters at dilations 1-4 fused by a conv",
        code_url="https://github.com/tsingqguo/efficientderain",
        variants={f"{v}_{k}": _variant(v, k) for v in ("v3", "v4") for k in TRAIN_SETS},
        default_variant="v3_rain100h",  # the version the official code and test.sh correspond to
    )
    multiple = 16

    @property
    def weights_filename(self) -> str:
        return self.variant_info.weights[0].filename

    def load(self, device: torch.device) -> None:
        self.device = device
        net = EfficientDerainNet()
        net.load_state_dict(self.load_state_dict(self.weights_filename), strict=True)
        self.net = net.to(device).eval()

    def network(self) -> torch.nn.Module:
        return getattr(self, "net", None) or EfficientDerainNet()

    @torch.no_grad()
    def derain(self, batch: torch.Tensor) -> torch.Tensor:
        """batch: float32 Bx3xHxW RGB in [0,1], any H, W -> float32 Bx3xHxW in [0,1]."""
        x = batch.to(self.device)
        h, w = x.shape[-2:]
        h16, w16 = -(-h // self.multiple) * self.multiple, -(-w // self.multiple) * self.multiple
        if (h16, w16) != (h, w):
            x = F.interpolate(x, size=(h16, w16), mode="bilinear", align_corners=False)
        out = self.net(x).clamp(0, 1)
        if (h16, w16) != (h, w):
            out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)
        return out
