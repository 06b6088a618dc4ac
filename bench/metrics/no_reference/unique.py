"""UNIQUE (Zhang et al., TIP 2021) through pyiqa's architecture: higher is better, roughly -3 to 3.

ResNet-34 features, bilinear pooling, signed square root, L2 normalisation and a linear layer whose
first output is the predicted mean quality. The weights (``UNIQUE.pt``, pyiqa's copy of the authors'
release) are only published as a download; this metric never downloads them. It looks for the file
given to the constructor, then $BENCH_UNIQUE_WEIGHTS, pyiqa's cache ($TORCH_HOME/hub/pyiqa/UNIQUE.pt)
and ``<weights_dir>/unique/UNIQUE.pt``, and otherwise reports itself unavailable with the URL.

The network is built with an uninitialised ResNet-34 (pyiqa's own constructor would download ImageNet
weights first, which ``UNIQUE.pt`` overwrites anyway) and the file is loaded with weights_only=True.
Like the authors' demo (``AdaptiveResize(768)``), images whose both sides are >= 768 px are resized
(bilinear) so that the shorter side is 768; smaller ones are scored as they are.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bench.errors import BadInputError
from bench.metrics.api import MetricInfo, NoReferenceMetric
from bench.metrics.no_reference import models

WEIGHTS_FILE = "UNIQUE.pt"
WEIGHTS_URL = "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/UNIQUE.pt"
ENV = "BENCH_UNIQUE_WEIGHTS"
RESIZE_SHORT_SIDE = 768
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_unique_network():  # -> pyiqa.archs.unique_arch.UNIQUE
    """pyiqa's UNIQUE module with random weights, built without any download."""
    import torchvision
    from pyiqa.archs.unique_arch import BCNN, Normalize
    from pyiqa.archs.unique_arch import UNIQUE as PyiqaUNIQUE
    from torch import nn

    net = PyiqaUNIQUE.__new__(PyiqaUNIQUE)
    nn.Module.__init__(net)
    net.backbone = torchvision.models.resnet34(weights=None)
    net.representation = BCNN()
    net.fc = nn.Linear(512 * 512, 2)
    net.preprocess = Normalize(mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD))
    return net.eval()


def candidate_paths(weights: str | Path | None = None, weights_dir: Path | None = None) -> list[tuple[Path, str]]:
    """Where the weights file is looked for, in order, with a label for each."""
    found: list[tuple[Path, str]] = []
    if weights:
        found.append((Path(weights).expanduser(), "argument"))
    if os.environ.get(ENV):
        found.append((Path(os.environ[ENV]).expanduser(), f"${ENV}"))
    found.append((models.torch_hub_file("pyiqa", WEIGHTS_FILE), "pyiqa's cache"))
    try:
        found.append(((weights_dir or models.default_weights_dir()) / "unique" / WEIGHTS_FILE, "weights dir"))
    except BadInputError:  # an unreadable bench.toml must not hide the other places
        found.append((Path("weights") / "unique" / WEIGHTS_FILE, "weights dir (bench.toml unreadable)"))
    return found


class UNIQUE(NoReferenceMetric):
    """UNIQUE predicted mean quality of a uint8 RGB image (higher is better)."""

    info = MetricInfo("unique", "no-reference", True,
                      "UNIQUE learned quality (ResNet-34 + bilinear pooling, six IQA databases), higher is better", "",
                      (-3, 3), decimals=3)

    def __init__(self, weights: str | Path | None = None, weights_dir: Path | None = None,
                 adaptive_resize: bool = True) -> None:
        """weights: path to UNIQUE.pt (else $BENCH_UNIQUE_WEIGHTS, pyiqa's cache, <weights_dir>/unique/)."""
        self.adaptive_resize = adaptive_resize
        self._net = None
        self._reason: str | None = None
        places = candidate_paths(weights, weights_dir)
        explicit = [p for p in places if p[1] in ("argument", f"${ENV}")]
        for path, label in explicit:
            if not path.is_file():
                raise FileNotFoundError(f"unique: {label} names {path}, which is not a file; point it at "
                                        f"{WEIGHTS_FILE} ({WEIGHTS_URL}) or remove it")
        for path, label in places:
            if path.is_file():
                self._path, self._where = path, f"{label} {path}"
                break
        else:
            looked = ", ".join(str(p) for p, _ in places)
            folders = " or ".join(str(p.parent) for p, label in places if label != "argument" and not label.startswith("$"))
            self._reason = (f"unique: weights file {WEIGHTS_FILE} not found (looked in {looked}). Download it from "
                            f"{WEIGHTS_URL} and put it in {folders}, or set {ENV}=<path to {WEIGHTS_FILE}>")
            return
        import pyiqa

        self.implementation = (f"pyiqa {pyiqa.__version__} UNIQUE architecture, weights {WEIGHTS_FILE} "
                               f"(sha256 {models.sha256_of(self._path)[:12]}) from {self._where}"
                               + (", shorter side resized to 768 when both sides >= 768" if adaptive_resize else ""))

    def unavailable_reason(self) -> str | None:
        return self._reason

    def network(self):  # -> torch.nn.Module
        """The loaded network (loads on first use)."""
        if self._net is None:
            import torch

            state = torch.load(self._path, map_location="cpu", weights_only=True)
            if isinstance(state, dict) and "params" in state and isinstance(state["params"], dict):
                state = state["params"]
            state = {k.removeprefix("module."): v for k, v in state.items()}
            net = build_unique_network()
            try:
                net.load_state_dict(state, strict=True)
            except RuntimeError as exc:
                raise RuntimeError(f"unique: {self._path} is not a UNIQUE state dict ({str(exc)[:300]}); "
                                   f"get {WEIGHTS_FILE} from {WEIGHTS_URL}") from exc
            self._net = net.eval()
        return self._net

    def score(self, image: np.ndarray) -> float:
        """image: uint8 HxWx3 RGB -> UNIQUE mean quality (higher is better, about -3..3)."""
        if self._reason is not None:
            raise RuntimeError(self._reason)
        import torch
        import torchvision.transforms.functional as tvf
        from PIL import Image

        if image.ndim != 3 or image.shape[2] < 3 or min(image.shape[:2]) < 32:
            raise ValueError(f"unique: expected an HxWx3 RGB image with both sides >= 32 px, got {image.shape}")
        rgb = np.ascontiguousarray(image[..., :3])
        if self.adaptive_resize and min(rgb.shape[:2]) >= RESIZE_SHORT_SIDE:
            pil = tvf.resize(Image.fromarray(rgb), RESIZE_SHORT_SIDE, interpolation=tvf.InterpolationMode.BILINEAR)
            rgb = np.asarray(pil)
        tensor = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
        with torch.no_grad():
            return float(self.network()(tensor).item())
