"""PSNR/SSIM profiles against independent computations and the Rain100L reference figures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench.errors import UnknownNameError
from bench.metrics.profiles import (
    PROFILES,
    compute_full_reference,
    compute_full_reference_many,
    get_profile,
    quantise_output,
    ssim_downsample_factor,
    ssim_wang,
)


def _wang_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """scikit-image's SSIM set up as Wang et al. (Gaussian 11x11, sigma 1.5, population covariance)."""
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)


def _y_unrounded(rgb8: np.ndarray) -> np.ndarray:
    r, g, b = (rgb8[..., i].astype(np.float64) for i in range(3))
    return (16 * 255 + 65.481 * r + 128.553 * g + 24.966 * b) / 255


def _pair(seed: int, shape: tuple[int, int] = (48, 64)) -> tuple[np.ndarray, np.ndarray]:
    """A smooth target (float in [0,1] from 8 bits) and a noisy uint16 output."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    base = np.stack([0.5 + 0.4 * np.sin(xx / 7 + c) * np.cos(yy / 5 - c) for c in range(3)], axis=-1)
    target = np.round(np.clip(base + rng.normal(0, 0.03, base.shape), 0, 1) * 255) / 255
    output = np.clip(target + rng.normal(0, 0.04, base.shape), 0, 1)
    return np.round(output * 65535).astype(np.uint16), target


def _independent(out16: np.ndarray, target: np.ndarray, profile: str) -> tuple[float, float]:
    """The same figure from first principles: integer quantisation, skimage PSNR and SSIM."""
    codes = out16.astype(np.int64)
    if profile in ("prenet-y", "rgb"):
        out8 = np.floor(codes / 65535 * 255 + 1e-9).astype(np.uint8)  # uint8(255*x)
    else:
        out8 = np.round(codes / 65535 * 255).astype(np.uint8)
    tgt8 = np.round(target * 255).astype(np.uint8)
    if profile == "rgb":
        value = peak_signal_noise_ratio(tgt8, out8, data_range=255)
        ssim = np.mean([_wang_ssim(out8[..., c].astype(float), tgt8[..., c].astype(float)) for c in range(3)])
        return value, float(ssim)
    yo, yt = _y_unrounded(out8), _y_unrounded(tgt8)
    if profile == "matlab-y":
        yo, yt = np.floor(yo + 0.5), np.floor(yt + 0.5)
    value = peak_signal_noise_ratio(yt, yo, data_range=255)
    return value, float(_wang_ssim(yo, yt))


@pytest.mark.parametrize("profile", list(PROFILES))
def test_profile_matches_independent_computation(profile: str) -> None:
    for seed in range(3):
        out16, target = _pair(seed)
        figures = compute_full_reference(out16, target, profile)
        value, ssim = _independent(out16, target, profile)
        assert figures["psnr"] == pytest.approx(value, abs=1e-9)
        assert figures["ssim"] == pytest.approx(ssim, abs=1e-6)


def test_psnr_of_known_mse_and_the_luma_rounding() -> None:
    grey = np.full((32, 32, 3), 100, np.uint8)
    brighter = np.full((32, 32, 3), 110, np.uint8)
    rgb = compute_full_reference(brighter, grey, "rgb")
    assert rgb["psnr"] == pytest.approx(10 * math.log10(255**2 / 100))  # MSE 10^2
    # Unrounded Y differs by 10 * 219/255; MATLAB's uint8 Y gives round(110.47) - round(101.88) = 110 - 102 = 8.
    unrounded = compute_full_reference(brighter, grey, "basicsr-y")
    assert unrounded["psnr"] == pytest.approx(10 * math.log10(255**2 / (10 * 219 / 255) ** 2))
    rounded = compute_full_reference(brighter, grey, "matlab-y")
    assert rounded["psnr"] == pytest.approx(10 * math.log10(255**2 / 64))
    assert rounded["psnr"] - unrounded["psnr"] == pytest.approx(20 * math.log10(2190 / 255 / 8))  # +0.62 dB
    assert compute_full_reference(grey, grey, "prenet-y")["psnr"] == math.inf


def test_matlab_round_sends_exact_halves_up() -> None:
    # (R,G,B) = (0,204,68): 16 + (128.553*204 + 24.966*68)/255 = 125.5 exactly.
    half = np.zeros((16, 16, 3), np.uint8)
    half[..., 1], half[..., 2] = 204, 68
    flat = np.full((16, 16, 3), 126, np.uint8)  # Y = round(16 + 219*126/255) = round(124.21) = 124
    figures = compute_full_reference(half, flat, "matlab-y")
    assert figures["psnr"] == pytest.approx(10 * math.log10(255**2 / (126 - 124) ** 2))


def test_truncation_and_rounding_of_a_16bit_output() -> None:
    level = np.full((20, 20, 3), 100, np.uint16) * 257 + int(0.6 * 257)  # 8-bit value 100.6
    assert quantise_output(level, "truncate")[0, 0, 0] == 100
    assert quantise_output(level, "round")[0, 0, 0] == 101
    exact = np.full((4, 4, 3), 77 * 257, np.uint16)  # an 8-bit value survives both rules
    assert np.all(quantise_output(exact, "truncate") == 77) and np.all(quantise_output(exact, "round") == 77)
    target = np.full((20, 20, 3), 100 / 255)
    assert compute_full_reference(level, target, "rgb")["psnr"] == math.inf  # truncated to 100
    assert compute_full_reference(level, target, "basicsr-y")["psnr"] == pytest.approx(
        10 * math.log10(255**2 / (219 / 255) ** 2))  # rounded to 101: Y off by 219/255


def _matlab_downsample_by_hand(img: np.ndarray, f: int) -> np.ndarray:
    """imfilter(img, ones(f)/f^2, 'symmetric') with MATLAB's kernel centre floor((f+1)/2), then 1:f:end."""
    centre = (f + 1) // 2 - 1  # 0-based
    padded = np.pad(img, f, mode="symmetric")
    out = np.zeros_like(img)
    for dy in range(f):
        for dx in range(f):
            oy, ox = f + dy - centre, f + dx - centre
            out += padded[oy:oy + img.shape[0], ox:ox + img.shape[1]]
    return (out / f**2)[::f, ::f]


@pytest.mark.parametrize(("shape", "factor"), [((384, 400), 2), ((383, 400), 1), ((640, 650), 3)])
def test_prenet_ssim_downsampling(shape: tuple[int, int], factor: int) -> None:
    # MATLAB round(640/256) = round(2.5) = 3 (Python's round would give 2).
    assert ssim_downsample_factor(*shape) == factor
    rng = np.random.default_rng(1)
    a = np.round(100 + 50 * np.add.outer(np.arange(shape[0]), np.arange(shape[1])) / sum(shape))
    b = np.clip(a + rng.normal(0, 20, shape), 0, 255)  # noise that the box filter averages away
    expected = _wang_ssim(_matlab_downsample_by_hand(a, factor), _matlab_downsample_by_hand(b, factor)) \
        if factor > 1 else _wang_ssim(a, b)
    assert float(ssim_wang(a, b, downsample=True)) == pytest.approx(expected, abs=1e-6)
    if factor > 1:  # and it does change the figure
        assert abs(float(ssim_wang(a, b)) - expected) > 0.05


def test_crop_border_option() -> None:
    out16, target = _pair(5, (60, 70))
    cropped = compute_full_reference(out16[4:-4, 4:-4], target[4:-4, 4:-4], "basicsr-y")
    assert compute_full_reference(out16, target, "basicsr-y:crop_border=4") == pytest.approx(cropped)
    assert get_profile("basicsr-y:crop_border=4").crop_border == 4
    assert get_profile("basicsr-y:crop_border=0") is PROFILES["basicsr-y"]
    with pytest.raises(UnknownNameError, match="matlab-y"):
        get_profile("matlab_y")


def test_many_equals_one_by_one() -> None:
    pairs = [_pair(s) for s in range(3)]
    many = compute_full_reference_many([p[0] for p in pairs], [p[1] for p in pairs], "prenet-y")
    single = [compute_full_reference(o, t, "prenet-y") for o, t in pairs]
    assert many["psnr"] == pytest.approx([s["psnr"] for s in single])
    assert many["ssim"] == pytest.approx([s["ssim"] for s in single])


def test_rain100l_rainy_reference_figures(shared_data) -> None:
    from bench.images import read_image, to_uint16

    folder = shared_data / "rain100l"
    names = sorted(p.name for p in (folder / "input").glob("*.png"))
    assert len(names) == 100
    outputs = [to_uint16(read_image(folder / "input" / n)) for n in names]  # the identity "method"
    targets = [read_image(folder / "target" / n) for n in names]
    for profile in ("prenet-y", "matlab-y"):
        figures = compute_full_reference_many(outputs, targets, profile)
        assert figures["psnr"].mean() == pytest.approx(26.90, abs=0.05)
    rgb = compute_full_reference_many(outputs, targets, "rgb")
    assert rgb["psnr"].mean() == pytest.approx(25.52, abs=0.05)
    assert rgb["ssim"].mean() == pytest.approx(0.825, abs=0.002)
