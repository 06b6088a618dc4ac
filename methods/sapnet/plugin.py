"""Method plugin ``sapnet``: SAPNet (Zheng et al., WACV 2022).

Variants:
- ``ours`` (default): SAPNet trained by this project (`bench train`), shipped in the package as
  ``methods/sapnet/checkpoints/sapnet_ours.pt``.
- ``official``: the checkpoint released in the official repository on 2021-11-27
  (``logs/SAPNet/Model11/net_latest.pth``), most likely trained on RainTrainH.
- ``official-2021-09-12``: an earlier checkpoint at the same path (commit e448e8e), removed a month later;
  it is the one behind the paper's Rain100L figure.
Both official checkpoints need the progressive dilations (1, 2, 4, 8, 16); with dilation 1 they lose ~6 dB.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from bench.methods.api import MethodInfo, Variant, WeightsFile
from methods.prenet.plugin import NetworkFactories, RecurrentNetMethod
from methods.sapnet.network import SAPNetwork

CODE_URL = "https://github.com/ShenZheng2000/SAPNet-for-image-deraining"
_REPO = "ShenZheng2000/SAPNet-for-image-deraining"
_PATH = "logs/SAPNet/Model11/net_latest.pth"
_COMMIT_2021_11_27 = "1e16a7649a46b0c138a489f9be77cc2be2f81541"  # "Add files via upload", 2021-11-27
_COMMIT_2021_09_12 = "e448e8ed659c3debddabf92b127db99dcf10f01e"  # first upload, deleted 2021-10-24


def _official(filename: str, commit: str, sha256: str, when: str) -> WeightsFile:
    return WeightsFile(
        filename,
        url=f"https://raw.githubusercontent.com/{_REPO}/{commit}/{_PATH}",
        sha256=sha256,
        folder="sapnet",
        how_to_get=f"download {_PATH} at commit {commit[:7]} ({when}) from {CODE_URL} and save it as {filename}",
    )


class SAPNet(RecurrentNetMethod):
    """SAPNet: PReNet-style recurrent network with progressive dilated units and channel residual attention."""

    info = MethodInfo(
        name="sapnet",
        display_name="SAPNet",
        paper="Zheng et al., SAPNet, WACV 2022",
        year=2022,
        kind="learned",
        description="6 weight-shared stages, ConvLSTM, 5 dilated residual units (1..16) with channel attention",
        code_url=CODE_URL,
        variants={
            "ours": Variant(
                description="SAPNet trained by this project (`bench train`), shipped in the package",
                note="trained by this project",
                packaged=True,
            ),
            "official": Variant(
                weights=(
                    _official(
                        "sapnet_official_2021-11-27.pth",
                        _COMMIT_2021_11_27,
                        "807bb16685280a493236f3e5fa804274198044ad838b5cc060bf66af03a259cb",
                        "released 2021-11-27",
                    ),
                ),
                description="official checkpoint as released (2021-11-27)",
                trained_on="RainTrainH (most likely; not stated by the authors)",
            ),
            "official-2021-09-12": Variant(
                weights=(
                    _official(
                        "sapnet_official_2021-09-12.pth",
                        _COMMIT_2021_09_12,
                        "51bee4395883581cd7f53dc96af06a8de599144a5d83dd79103c1464b7a47f5a",
                        "uploaded 2021-09-12, deleted 2021-10-24",
                    ),
                ),
                description="earlier official checkpoint (2021-09-12), the one behind the paper's Rain100L figure",
                trained_on="not stated by the authors",
                note="withdrawn from the official repository a month after upload",
            ),
        },
        default_variant="ours",
    )
    networks: ClassVar[NetworkFactories] = {"*": SAPNetwork}
    shipped: ClassVar[dict[str, Path]] = {"ours": Path(__file__).resolve().parent / "checkpoints" / "sapnet_ours.pt"}
    #: receptive field is large (dilations up to 16, 6 recurrent stages): keep wide overlaps between tiles
    tile_overlap = 64
