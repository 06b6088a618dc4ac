"""Task model ``espnet``: the official ESPNet (p=2, q=8) Cityscapes segmenter, the default segmentation model.

Weights: ``pretrained/decoder/espnet_p_2_q_8.pth`` of github.com/sacmehta/ESPNet (a plain state dict, 20
outputs: the 19 Cityscapes train ids and an ignore class 19, which :meth:`ESPNetCityscapes.predict` maps to 255).

Preprocessing, as in the official test script ``test/VisualizeResults.py`` (and the training transforms in
``train/Transforms.py``): the image in **BGR** order with values 0..255 (``cv2.imread``), minus the per-channel
mean ``(72.3923111, 82.90893555, 73.15840149)`` and divided by the std ``(45.3192215, 46.15289307, 44.91483307)``
(B, G, R; Cityscapes training statistics), resized to 1024x512 with bilinear interpolation (``cv2.resize``
default INTER_LINEAR, whatever the aspect ratio), and finally divided by 255 (the official ``img /= 255``).
The official script stops at the 1024x512 arg-max; here the 20 logits are bilinearly upsampled to the
input's size (half-pixel centres) and the arg-max is taken there.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from bench.errors import BadInputError
from bench.methods.checkpoints import read_torch_file, unwrap_state_dict
from bench.tasks.api import TaskModel, TaskModelInfo, Variant, WeightsFile
from bench.tasks.models.espnet.network import ESPNet

CODE_URL = "https://github.com/sacmehta/ESPNet"
WEIGHTS_URL = "https://raw.githubusercontent.com/sacmehta/ESPNet/master/pretrained/decoder/espnet_p_2_q_8.pth"
WEIGHTS_SHA256 = "343b0e77e8545d36113c4f3efbf1ee349256f25c97c9f9d5ddefe45f2f49763e"

#: official test preprocessing (test/VisualizeResults.py): B, G, R statistics on 0..255 values
MEAN_BGR = (72.3923111, 82.90893555, 73.15840149)
STD_BGR = (45.3192215, 46.15289307, 44.91483307)
INPUT_SIZE = (512, 1024)  # (height, width)
IGNORE_CLASS = 19


def labels_from_logits(logits: torch.Tensor, size: tuple[int, int], ignore_class: int | None = None,
                       band_rows: int = 256) -> np.ndarray:
    """Arg-max of ``logits`` (C x h x w) bilinearly upsampled to ``size`` = (H, W) -> int64 HxW.

    Same result as ``F.interpolate(logits[None], size, mode="bilinear", align_corners=False).argmax(1)``
    (half-pixel centres, no antialiasing), computed in bands of output rows so that a large image never
    holds all C x H x W upsampled scores. ``ignore_class`` (when given) becomes 255.
    """
    height, width = size
    channels, h, w = logits.shape
    logits = logits.float()
    # width first (all h source rows), then each output band interpolates between two source rows
    rows = F.interpolate(logits[None], size=(h, width), mode="bilinear", align_corners=False)[0] if w != width else logits
    out = torch.empty((height, width), dtype=torch.int64, device=logits.device)
    if h == height:
        for top in range(0, height, band_rows):
            out[top:top + band_rows] = rows[:, top:top + band_rows].argmax(0)
    else:
        src = ((torch.arange(height, dtype=torch.float64) + 0.5) * (h / height) - 0.5).clamp(min=0)
        low = src.floor().long().clamp(max=h - 1)
        high = (low + 1).clamp(max=h - 1)
        frac = (src - low).float().to(logits.device)
        low, high = low.to(logits.device), high.to(logits.device)
        for top in range(0, height, band_rows):
            sl = slice(top, top + band_rows)
            lam = frac[sl][None, :, None]
            band = rows[:, low[sl]] * (1 - lam) + rows[:, high[sl]] * lam
            out[sl] = band.argmax(0)
    if ignore_class is not None:
        out[out == ignore_class] = 255
    return out.cpu().numpy()


class ESPNetCityscapes(TaskModel):
    """ESPNet p=2, q=8 trained on Cityscapes (19 train ids; its ignore class becomes 255)."""

    info = TaskModelInfo(
        name="espnet",
        display_name="ESPNet",
        task="segmentation",
        label_space="cityscapes-19",
        paper="Mehta et al., ESPNet: Efficient Spatial Pyramid of Dilated Convolutions for Semantic Segmentation, ECCV 2018",
        year=2018,
        preprocessing=("BGR 0..255 minus mean (72.39, 82.91, 73.16) over std (45.32, 46.15, 44.91), bilinear resize to "
                       "1024x512, /255 (official test/VisualizeResults.py); logits bilinearly upsampled to the image size, arg-max"),
        variants={
            "cityscapes": Variant(
                weights=(WeightsFile("espnet_p_2_q_8.pth", url=WEIGHTS_URL, sha256=WEIGHTS_SHA256, folder="espnet",
                                     how_to_get=f"pretrained/decoder/espnet_p_2_q_8.pth in {CODE_URL}"),),
                description="official ESPNet (p=2, q=8) with the light decoder, 0.36 M parameters",
                trained_on="Cityscapes train (fine annotations), 19 classes + ignore, 1024x512",
            ),
        },
        default_variant="cityscapes",
        description="efficient spatial pyramid of dilated convolutions, encoder-decoder, 20 outputs at full resolution",
        code_url=CODE_URL,
        licence="MIT",
    )

    net: ESPNet | None = None

    def load(self, device: torch.device) -> None:
        """Build ESPNet(20, p=2, q=8) on ``device`` and load the checkpoint with ``strict=True``."""
        self.device = device
        path = self.weights_path("espnet_p_2_q_8.pth")
        fix = f"delete it and fetch the official file again ({WEIGHTS_URL})"
        state = unwrap_state_dict(read_torch_file(path, self.owner, fix), path, self.owner, fix)
        net = ESPNet(classes=20, p=2, q=8)
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise BadInputError(f"{self.owner}: checkpoint {path} does not match ESPNet(p=2, q=8, 20 classes): "
                                f"{_short(exc)}; {fix}") from exc
        self.net = net.to(device).eval()

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        """float32 HxWx3 RGB in [0,1] -> 1x3x512x1024 network input (official normalisation, see module doc)."""
        x = torch.as_tensor(np.ascontiguousarray(image), dtype=torch.float32, device=self.device)
        x = x.permute(2, 0, 1).flip(0) * 255.0  # RGB [0,1] -> BGR 0..255
        mean = torch.tensor(MEAN_BGR, device=self.device).view(3, 1, 1)
        std = torch.tensor(STD_BGR, device=self.device).view(3, 1, 1)
        x = ((x - mean) / std)[None]
        # normalising then resizing (official order) equals resizing then normalising: both are linear per channel
        if tuple(x.shape[-2:]) != INPUT_SIZE:
            x = F.interpolate(x, size=INPUT_SIZE, mode="bilinear", align_corners=False, antialias=False)
        return x / 255.0

    def predict(self, image: np.ndarray) -> np.ndarray:
        """float32 HxWx3 RGB in [0,1] -> int64 HxW Cityscapes train ids 0..18, 255 where ESPNet says 'ignore'."""
        if self.net is None:
            raise BadInputError(f"{self.owner}: predict() called before load()")
        if image.ndim != 3 or image.shape[2] != 3:
            raise BadInputError(f"{self.owner}: expected an HxWx3 RGB image, got shape {tuple(image.shape)}")
        with torch.inference_mode():
            logits = self.net(self.preprocess(image))[0]
            return labels_from_logits(logits, image.shape[:2], ignore_class=IGNORE_CLASS)

    def network(self) -> torch.nn.Module | None:
        return self.net if self.net is not None else ESPNet(classes=20, p=2, q=8)


def _short(exc: Exception, limit: int = 400) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + " ..."
