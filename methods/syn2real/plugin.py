"""Syn2Real plugin: the four ``derain_best`` checkpoints committed to the official repository."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from bench.methods.api import DerainMethod, MethodInfo, Variant, WeightsFile
from methods.syn2real.network import Syn2RealNet

REPO = "https://github.com/rajeevyasarla/Syn2Real"
EXPERIMENTS = {  # variant -> (official experiment folder, labelled synthetic set, unlabelled set)
    "ddn_sirr": ("DDN_SIRR_withGP", "DDN (Rain14000) synthetic pairs", "SIRR real rainy images"),
    "didmdn_ddn": ("DIDMDN_DDN_withGP", "DID-MDN synthetic pairs", "DDN (Rain14000) rainy images"),
    "didmdn_jorder200l": ("DIDMDN_JORDER200L_withGP", "DID-MDN synthetic pairs", "JORDER Rain200L rainy images"),
    "didmdn_rain800": ("DIDMDN_Rain800_withGP", "DID-MDN synthetic pairs", "Rain800 rainy images"),
}
MAX_SIDE, MULTIPLE = 1024, 16


def _variant(key: str) -> Variant:
    folder, labelled, unlabelled = EXPERIMENTS[key]
    return Variant(
        weights=(
            WeightsFile(
                "derain_best",
                url=f"{REPO}/raw/master/{folder}/derain_best",
                folder=f"syn2real/{folder}",
                how_to_get=f"In the official repository at {folder}/derain_best; place it in <weights_dir>/syn2real/{folder}/.",
            ),
        ),
        description=f"official {folder} checkpoint (Gaussian-process semi-supervision)",
        trained_on=f"labelled: {labelled}; unlabelled: {unlabelled}",
    )


def official_size(h: int, w: int) -> tuple[int, int]:
    """Network input size of the official ``val_data.py``: long side capped at 1024, then each side rounded
    up to a multiple of 16. Returns (height, width)."""
    if h > w and h > MAX_SIDE:
        w, h = int(np.ceil(w * MAX_SIDE / h)), MAX_SIDE
    elif h <= w and w > MAX_SIDE:
        h, w = int(np.ceil(h * MAX_SIDE / w)), MAX_SIDE
    return int(MULTIPLE * np.ceil(h / MULTIPLE)), int(MULTIPLE * np.ceil(w / MULTIPLE))


def lanczos_resize(image: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Resize a 3xHxW float image with PIL's Lanczos filter channel by channel (float precision)."""
    arr = image.detach().cpu().float().numpy()
    planes = [np.asarray(Image.fromarray(c, mode="F").resize((w, h), Image.Resampling.LANCZOS)) for c in arr]
    return torch.from_numpy(np.stack(planes)).to(image.device)


class Syn2Real(DerainMethod):
    """Syn2Real (Yasarla et al., CVPR 2020), network ``DeRain_v2``.

    Pre/post-processing as the official ``test.py`` / ``val_data.py``: Lanczos resize of the 8-bit image to
    the official size (see :func:`official_size`), normalisation to [-1, 1], first output (a sigmoid, already
    in [0, 1]). The official script saves the output at the network size; here it is resized back (Lanczos)
    to the input size so that it lines up with the input and its ground truth.
    """

    info = MethodInfo(
        name="syn2real",
        display_name="Syn2Real",
        paper="Syn2Real Transfer Learning for Image Deraining using Gaussian Processes",
        year=2020,
        kind="learned",
        description="Res2Net-style encoder-decoder trained semi-supervised with a Gaussian process on real images",
        code_url=REPO,
        variants={key: _variant(key) for key in EXPERIMENTS},
        default_variant="ddn_sirr",
    )
    max_tile = None  # the official pipeline resizes large images itself (long side 1024)

    def load(self, device: torch.device) -> None:
        self.device = device
        net = Syn2RealNet()
        net.load_state_dict(self.load_state_dict("derain_best"), strict=True)
        self.net = net.to(device).eval()

    def network(self) -> torch.nn.Module:
        return getattr(self, "net", None) or Syn2RealNet()

    @torch.no_grad()
    def derain(self, batch: torch.Tensor) -> torch.Tensor:
        """batch: float32 Bx3xHxW RGB in [0,1], any H, W -> float32 Bx3xHxW in [0,1]."""
        h, w = batch.shape[-2:]
        nh, nw = official_size(h, w)
        outputs = []
        for image in batch:
            # the official loader resizes the 8-bit image (PIL, Lanczos) and re-quantises it
            u8 = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
            if (nh, nw) != (h, w):
                u8 = np.array(Image.fromarray(u8).resize((nw, nh), Image.Resampling.LANCZOS))
            x = torch.from_numpy(u8).permute(2, 0, 1).float().div(255).to(self.device)
            clean, _ = self.net((x.unsqueeze(0) - 0.5) / 0.5)
            clean = clean[0]
            if (nh, nw) != (h, w):
                clean = lanczos_resize(clean, h, w)
            outputs.append(clean.clamp(0, 1))
        return torch.stack(outputs).to(batch.device)
