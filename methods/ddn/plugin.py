"""Method plugin ``ddn``: DDN (Fu et al., CVPR 2017) with the official MatConvNet weights.

The official release is MATLAB only (``demo.m`` calling an encrypted ``processing.p``); this plugin
re-implements it in PyTorch (see :mod:`methods.ddn.network` for how each step was established) and reads
``network.mat`` array by array (:mod:`methods.ddn.matfile`).
"""

from __future__ import annotations

import torch
from torch import nn

from bench.errors import BadInputError
from bench.methods.api import DerainMethod, MethodInfo, Variant, WeightsFile
from methods.ddn.matfile import load_ddn_mat
from methods.ddn.network import DDNNetwork

CODE_URL = "https://github.com/XMU-smartdsp/Removing_Rain"
_COMMIT = "adbc1dd55187595691c5096a4e71da86d6aae8e3"
WEIGHTS = WeightsFile(
    "network.mat",
    url=f"https://raw.githubusercontent.com/XMU-smartdsp/Removing_Rain/{_COMMIT}/network.mat",
    sha256="8dab3f4ede5abf6ab03a589ef848b2d7691e86512641d6072d87de9e4a1071c5",
    folder="ddn",
    how_to_get=f"download network.mat from the root of {CODE_URL}",
)


class DDN(DerainMethod):
    """Deep detail network: guided-filter detail layer -> 26-layer residual CNN -> input + negative residual."""

    info = MethodInfo(
        name="ddn",
        display_name="DDN",
        paper="Fu et al., Removing Rain from Single Images via a Deep Detail Network, CVPR 2017",
        year=2017,
        kind="learned",
        description="guided-filter base/detail split; 26 conv layers of 16 channels with batch norm on the detail",
        code_url=CODE_URL,
        variants={
            "default": Variant(
                weights=(WEIGHTS,),
                description="official MatConvNet weights (network.mat)",
                trained_on="Fu et al.'s synthetic rain set (14,000 rainy images rendered from 1,000 clean images)",
            )
        },
    )
    #: the guided filter reaches 32 px and the 26 convolutions another 26 px
    tile_overlap = 64

    net: DDNNetwork | None = None

    def load(self, device: torch.device) -> None:
        """Read ``network.mat`` (every array used, shapes checked) and move the network to ``device``."""
        self.device = device
        self.net = load_ddn_mat(self.weights_path(WEIGHTS.filename)).to(device).eval()

    def derain(self, batch: torch.Tensor) -> torch.Tensor:
        """batch: float32 Bx3xHxW RGB in [0,1] -> derained float32 Bx3xHxW in [0,1]."""
        if self.net is None:
            raise BadInputError(f"method {self.spec}: derain() called before load()")
        with torch.inference_mode():
            return self.net(batch.to(self.device)).clamp(0.0, 1.0)

    def network(self) -> nn.Module | None:
        return self.net if self.net is not None else DDNNetwork()
