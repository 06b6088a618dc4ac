"""MPRNet plugin: the official deraining checkpoint (trained on Rain13K), run as the official demo.py does."""

from __future__ import annotations

import torch

from bench.methods.api import DerainMethod, MethodInfo, Variant, WeightsFile
from methods.mprnet.network import MPRNetModel, pad_to_multiple

DRIVE_URL = "https://drive.google.com/file/d/1O3WEJbcat7eTY6doXWeorAbQ1l_WmMnM/view?usp=sharing"


class MPRNet(DerainMethod):
    """MPRNet (Zamir et al., CVPR 2021).

    Pre/post-processing as the official ``demo.py``: pad bottom/right by reflection to a multiple of 8,
    keep the first (stage-3) output, clamp to [0, 1], crop back. The checkpoint is a dict whose
    ``state_dict`` holds the weights (a ``module.`` prefix, if any, is stripped).
    """

    info = MethodInfo(
        name="mprnet",
        display_name="MPRNet",
        paper="Multi-Stage Progressive Image Restoration",
        year=2021,
        kind="learned",
        description="three-stage encoder-decoder / original-resolution network with supervised attention",
        code_url="https://github.com/swz30/MPRNet",
        variants={
            "default": Variant(
                weights=(
                    WeightsFile(
                        "model_deraining.pth",
                        url=None,
                        how_to_get=(
                            f"Google Drive only: download model_deraining.pth from {DRIVE_URL} "
                            "(link in swz30/MPRNet Deraining/README.md) and place it in <weights_dir>/mprnet/."
                        ),
                    ),
                ),
                description="official deraining model",
                trained_on="Rain13K (13,712 pairs: Rain14000, Rain1800, Rain800, Rain12)",
            )
        },
    )
    #: spatial multiple the official demo pads to
    pad_multiple = 8

    def load(self, device: torch.device) -> None:
        self.device = device
        net = MPRNetModel()
        net.load_state_dict(self.load_state_dict("model_deraining.pth"), strict=True)
        self.net = net.to(device).eval()

    def network(self) -> torch.nn.Module:
        return getattr(self, "net", None) or MPRNetModel()

    @torch.no_grad()
    def derain(self, batch: torch.Tensor) -> torch.Tensor:
        """batch: float32 Bx3xHxW RGB in [0,1], any H, W -> float32 Bx3xHxW in [0,1]."""
        x, h, w = pad_to_multiple(batch.to(self.device), self.pad_multiple)
        restored = self.net(x)[0]
        return restored.clamp(0, 1)[:, :, :h, :w]
