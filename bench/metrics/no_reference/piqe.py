"""PIQE (Venkatanath et al., NCC 2015) through pyiqa, which needs no weights: lower is better, 0 to 100."""

from __future__ import annotations

import numpy as np

from bench.metrics.api import MetricInfo, NoReferenceMetric

MIN_SIDE = 16  # PIQE works on 16x16 blocks


class PIQE(NoReferenceMetric):
    """PIQE score of a uint8 RGB image (pyiqa's implementation, within 0.005 of the official MATLAB scores)."""

    info = MetricInfo("piqe", "no-reference", False,
                      "PIQE perception-based block distortion score, lower is better", "", (0, 100), decimals=2)

    def __init__(self) -> None:
        import pyiqa

        self._metric = pyiqa.create_metric("piqe", device="cpu")
        self.implementation = f"pyiqa {pyiqa.__version__} piqe"

    def score(self, image: np.ndarray) -> float:
        """image: uint8 HxWx3 RGB, both sides >= 16 px -> PIQE in [0, 100] (lower is better)."""
        import torch

        if image.ndim != 3 or image.shape[2] < 3 or min(image.shape[:2]) < MIN_SIDE:
            raise ValueError(f"piqe: expected an HxWx3 RGB image with both sides >= {MIN_SIDE} px, got {image.shape}")
        tensor = torch.from_numpy(np.array(image[..., :3])).permute(2, 0, 1)[None].float() / 255.0
        with torch.no_grad():
            return float(self._metric(tensor).item())
