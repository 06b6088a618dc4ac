"""MOSS plugin: the released DDN-SIRR model, and the authors' own published real-rain outputs.

``MOSS()`` / ``MOSS("default")`` runs the network; ``MOSS("published")`` returns a
:class:`~bench.methods.api.PrecomputedMethod` serving the outputs the MOSS authors published for the 48 real
rainy images of their repository (dataset ``moss``). Expected layout under the data root::

    <data_root>/moss_real48/moss_output/<stem>.jpg    (or)
    <data_root>/moss/moss_output/<stem>.jpg

with ``<stem>`` the input's stem (``1`` ... ``48``); they are ``data/real/moss/*.jpg`` of hhb072/MOSS.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.errors import UnavailableError
from bench.methods.api import DerainMethod, MethodInfo, PrecomputedMethod, Variant, WeightsFile
from methods.moss.network import MossNet
from methods.precomputed import find_by_stem

REPO = "https://github.com/hhb072/MOSS"
DRIVE_URL = "https://drive.google.com/drive/folders/1Ob4ATRd5bKtGLEzPhL84saY3tUW33Lu4?usp=sharing"
JIANGUO_URL = "https://www.jianguoyun.com/p/Deq2B2gQiaCuBxjy9IUE"
#: folders (relative to the data root) searched for the published outputs, in order
PUBLISHED_FOLDERS = ("moss_real48/moss_output", "moss/moss_output")
#: dataset names whose inputs those outputs belong to
PUBLISHED_DATASETS = ("moss", "moss_real48")
MULTIPLE = 8  # 2 ** num_scales


class MOSS(DerainMethod):
    """MOSS (Huang et al., CVPR 2021).

    Pre/post-processing as the official ``test.py`` (``test_real``): normalise to [-1, 1], resize (bicubic)
    to a multiple of 8 when needed, run one image at a time (the memory read-out depends on all pixels of the
    batch), resize back (bicubic), map tanh output to [0, 1] and clamp.
    """

    info = MethodInfo(
        name="moss",
        display_name="MOSS",
        paper="Memory Oriented Transfer Learning for Semi-Supervised Image Deraining",
        year=2021,
        kind="learned",
        description="encoder-decoder with a self-updating memory of rain prototypes, semi-supervised",
        code_url=REPO,
        variants={
            "default": Variant(
                weights=(
                    WeightsFile(
                        "ddn_ssir.pth",
                        url=None,
                        how_to_get=(
                            f"Cloud drives only: download ddn_ssir.pth from {DRIVE_URL} (or {JIANGUO_URL}), "
                            "as linked in the hhb072/MOSS README, and place it in <weights_dir>/moss/."
                        ),
                    ),
                ),
                description="official model",
                trained_on="DDN-SIRR: DDN synthetic pairs (labelled) + SIRR real rainy images (unlabelled)",
            ),
            "published": Variant(
                description="the MOSS authors' published outputs for their 48 real rainy images",
                trained_on="DDN-SIRR",
                note="precomputed outputs published by the authors",
            ),
        },
    )

    def __new__(cls, variant: str | None = None) -> DerainMethod:
        if variant == "published":
            return MossPublished("published")
        return super().__new__(cls)

    def load(self, device: torch.device) -> None:
        self.device = device
        net = MossNet()
        net.load_state_dict(self.load_state_dict("ddn_ssir.pth"), strict=True)
        self.net = net.to(device).eval()

    def network(self) -> torch.nn.Module:
        return getattr(self, "net", None) or MossNet()

    @torch.no_grad()
    def derain(self, batch: torch.Tensor) -> torch.Tensor:
        """batch: float32 Bx3xHxW RGB in [0,1], any H, W -> float32 Bx3xHxW in [0,1]."""
        h, w = batch.shape[-2:]
        h8, w8 = -(-h // MULTIPLE) * MULTIPLE, -(-w // MULTIPLE) * MULTIPLE
        outputs = []
        for image in batch.to(self.device):
            x = (image.unsqueeze(0) - 0.5) / 0.5
            if (h8, w8) != (h, w):
                x = F.interpolate(x, size=(h8, w8), mode="bicubic", align_corners=False)
            y = self.net(x)
            if (h8, w8) != (h, w):
                y = F.interpolate(y, size=(h, w), mode="bicubic", align_corners=False)
            outputs.append((y * 0.5 + 0.5).clamp(0, 1))
        return torch.cat(outputs)


class MossPublished(PrecomputedMethod):
    """``moss:published``: the authors' own outputs, found under ``self.data_root`` (see module docstring)."""

    info = dataclasses.replace(MOSS.info, kind="precomputed")

    def folder(self) -> Path | None:
        """The first existing published-output folder under the data root, or None."""
        if self.data_root is None:
            return None
        for rel in PUBLISHED_FOLDERS:
            if (Path(self.data_root) / rel).is_dir():
                return Path(self.data_root) / rel
        return None

    def unavailable_reason(self) -> str | None:
        if self.folder() is not None:
            return None
        where = " or ".join(str(Path(self.data_root or "<data_root>") / rel) for rel in PUBLISHED_FOLDERS)
        return (f"method moss:published: the MOSS authors' outputs were not found at {where}; copy "
                f"data/real/moss/*.jpg of {REPO} there")

    def output_path(self, dataset: str, image_id: str) -> Path | None:
        """Published output for ``image_id`` of the ``moss`` dataset; None for other datasets or missing files."""
        if dataset not in PUBLISHED_DATASETS:
            return None
        folder = self.folder()
        if folder is None:
            raise UnavailableError(self.unavailable_reason())
        return find_by_stem(folder, image_id)
