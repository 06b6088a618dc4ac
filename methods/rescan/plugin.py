"""Method plugin ``rescan``: RESCAN (Li et al., ECCV 2018) with the checkpoints retrained by the BRN authors.

RESCAN's own weights are only on a cloud drive; the BRN authors (Ren et al., csdwren/RecDerain) retrained it
with the official code on RainHeavy / RainLight (the re-released Rain100H / Rain100L training sets) and
published the checkpoints. Those were trained with ConvGRU units, full (not additive) prediction and
4 stages, on images read with OpenCV: the network sees BGR, so the plugin swaps the channels around it.
Measured on 5 Rain100L crops, these choices beat the alternatives (RGB order: -0.7 to -1.8 dB;
additive frame: -15 dB; 3 or 5 stages: -0.1 dB or less).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from bench.errors import BadInputError
from bench.methods.api import DerainMethod, MethodInfo, Variant, WeightsFile
from bench.methods.checkpoints import read_torch_file, unwrap_state_dict
from methods.rescan.network import RESCANNetwork

CODE_URL = "https://github.com/XiaLiPKU/RESCAN"
_BRN_REPO = "csdwren/RecDerain"
_BRN_COMMIT = "5b2ad01d41d3b0cd251d0b4033071b796f234cac"
_NOTE = "retrained by the BRN authors (Ren et al.), not RESCAN's own release"
_OWN_RELEASE = ("RESCAN's own pretrained models are only published on a cloud drive linked from "
                f"{CODE_URL} (no direct download); they use another configuration and do not load here")


def _brn_weights(log_folder: str, filename: str, sha256: str) -> WeightsFile:
    path = f"logs/{log_folder}/RESCAN/latest"
    return WeightsFile(
        filename,
        url=f"https://raw.githubusercontent.com/{_BRN_REPO}/{_BRN_COMMIT}/{path}",
        sha256=sha256,
        folder="rescan_brn",
        how_to_get=f"download {path} from https://github.com/{_BRN_REPO} and save it as {filename}. "
                   f"Alternative: {_OWN_RELEASE}",
    )


def read_rescan_checkpoint(path: Path, spec: str) -> dict[str, torch.Tensor]:
    """State dict of a RESCAN checkpoint: the official ``{'net': ..., 'clock': ..., 'opt': ...}`` or a plain
    state dict, read with ``weights_only=True``; a DataParallel ``module.`` prefix is removed."""
    owner, fix = f"method {spec}", "delete it and fetch it again (see `bench list methods`)"
    return unwrap_state_dict(read_torch_file(path, owner, fix), path, owner, fix, wrappers=("net",))


class RESCAN(DerainMethod):
    """Recurrent squeeze-and-excitation context aggregation network (ConvGRU, 4 stages)."""

    info = MethodInfo(
        name="rescan",
        display_name="RESCAN",
        paper="Li et al., Recurrent Squeeze-and-Excitation Context Aggregation Net for Single Image Deraining, "
              "ECCV 2018",
        year=2018,
        kind="learned",
        description="5 dilated ConvGRU units (dilations 1,1,2,4,8) with squeeze-and-excitation, 24 channels, "
                    "4 recurrent stages",
        code_url=CODE_URL,
        variants={
            "rainheavy": Variant(
                weights=(_brn_weights("RainHeavy", "rescan_rainheavy_latest",
                                      "237e29616891f599334c236def92ce216ef9662ca1f77437643ac4b1987c58a3"),),
                description="RESCAN checkpoint retrained on RainHeavy by the BRN authors",
                trained_on="RainHeavy (Rain100H train)",
                note=_NOTE,
            ),
            "rainlight": Variant(
                weights=(_brn_weights("RainLight", "rescan_rainlight_latest",
                                      "49bfd63951fc6fde251de82db9af42ef995db9d00113a585cd171c51fb533017"),),
                description="RESCAN checkpoint retrained on RainLight by the BRN authors",
                trained_on="RainLight (Rain100L train)",
                note=_NOTE,
            ),
        },
        default_variant="rainheavy",
    )
    #: 4 recurrent stages of dilated convolutions (up to 8) see far; squeeze-and-excitation is global
    tile_overlap = 64

    net: RESCANNetwork | None = None

    def load(self, device: torch.device) -> None:
        """Load the variant's checkpoint with ``strict=True``."""
        self.device = device
        (weights,) = self.required_weights()
        path = self.weights_path(weights.filename)
        net = RESCANNetwork()
        try:
            net.load_state_dict(read_rescan_checkpoint(path, self.spec), strict=True)
        except RuntimeError as exc:
            reason = " ".join(str(exc).split())
            raise BadInputError(f"method {self.spec}: checkpoint {path} does not match RESCAN (ConvGRU, 24 "
                                f"channels, depth 7): {reason} Check that the file belongs to this variant.") from exc
        self.net = net.to(device).eval()

    def derain(self, batch: torch.Tensor) -> torch.Tensor:
        """batch: float32 Bx3xHxW RGB in [0,1] -> derained float32 Bx3xHxW RGB in [0,1]."""
        if self.net is None:
            raise BadInputError(f"method {self.spec}: derain() called before load()")
        with torch.inference_mode():
            bgr = batch.to(self.device).flip(1)
            return self.net(bgr).flip(1).clamp(0.0, 1.0)

    def network(self) -> nn.Module | None:
        return self.net if self.net is not None else RESCANNetwork()
