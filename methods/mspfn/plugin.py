"""MSPFN plugin: the official TensorFlow checkpoint ``epoch50`` read directly (no TensorFlow needed)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.errors import BadInputError
from bench.methods.api import DerainMethod, MethodInfo, Variant, WeightsFile
from methods.mspfn.network import MSPFNNet, state_dict_from_tf
from methods.mspfn.tf_checkpoint import read_tf_checkpoint

DRIVE_URL = "https://drive.google.com/file/d/1nrjZtNs6AJYvfHi9TeCVTs50E57Fxgsc/view?usp=sharing"
BAIDU_URL = "https://pan.baidu.com/s/1vfYbkbygiR4fC1I6eNcpmQ (code u5v6)"
INDEX, DATA = "epoch50.index", "epoch50.data-00000-of-00001"
HOW_TO_GET = (
    f"Cloud drives only: download the pretrained model from {DRIVE_URL} (or {BAIDU_URL}), as linked in the "
    "kuijiang94/MSPFN README. It is the TensorFlow checkpoint that model/test/test_MSPFN.py restores as "
    f"'../MSPFN/epoch50'; place {INDEX} and {DATA} in <weights_dir>/mspfn/ (epoch50.meta is not needed)."
)
MULTIPLE = 4  # the graph's explicit output shapes need H and W divisible by 4


class MSPFN(DerainMethod):
    """MSPFN (Jiang et al., CVPR 2020), PyTorch port of the official TensorFlow test model.

    Pre/post-processing as the official ``test_MSPFN.py``: the image is fed as BGR scaled to [-1, 1]
    (``img / 127.5 - 1`` of the cv2 image) and the output mapped back with ``(y + 1) / 2`` and clamped.
    The official graph only accepts sizes divisible by 4 (its test images are crops); other sizes are padded
    bottom/right by reflection to a multiple of 4 and cropped back.
    """

    info = MethodInfo(
        name="mspfn",
        display_name="MSPFN",
        paper="Multi-Scale Progressive Fusion Network for Single Image Deraining",
        year=2020,
        kind="learned",
        description="three-scale pyramid with ConvLSTM residual memory and 17 progressive fusion stages",
        code_url="https://github.com/kuijiang94/MSPFN",
        variants={
            "default": Variant(
                weights=(WeightsFile(INDEX, url=None, how_to_get=HOW_TO_GET),
                         WeightsFile(DATA, url=None, how_to_get=HOW_TO_GET)),
                description="official released model (M17N1), TensorFlow checkpoint",
                trained_on="Rain13K (13,712 pairs: Rain14000, Rain1800, Rain800, Rain12)",
                note="authors: 0.1-0.2 dB below the paper's figures",
            )
        },
    )

    def load(self, device: torch.device) -> None:
        self.device = device
        index, data = self.weights_path(INDEX), self.weights_path(DATA)
        if index.parent != data.parent:
            raise BadInputError(f"method {self.spec}: {index.name} and {data.name} must be in the same folder "
                                f"(found {index.parent} and {data.parent})")
        net = MSPFNNet()
        state = state_dict_from_tf(read_tf_checkpoint(index.with_suffix("")))
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise BadInputError(f"method {self.spec}: {index} is not the official MSPFN M17N1 checkpoint: {exc}") from exc
        self.net = net.to(device).eval()

    def network(self) -> torch.nn.Module:
        return getattr(self, "net", None) or MSPFNNet()

    @torch.no_grad()
    def derain(self, batch: torch.Tensor) -> torch.Tensor:
        """batch: float32 Bx3xHxW RGB in [0,1], any H, W -> float32 Bx3xHxW in [0,1]."""
        x = batch.to(self.device).flip(1) * 2 - 1  # RGB -> BGR, [-1, 1]
        h, w = x.shape[-2:]
        pad_h, pad_w = (-h) % MULTIPLE, (-w) % MULTIPLE
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect" if pad_h < h and pad_w < w else "replicate")
        y = self.net(x)[:, :, :h, :w]
        return ((y + 1) / 2).flip(1).clamp(0, 1)
