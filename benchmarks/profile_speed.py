"""Time PSNR+SSIM for 100 pairs of 480x320 under each profile, next to BasicSR-style numpy code.

The BasicSR-style baseline follows what BasicSR's calculate_psnr/calculate_ssim do per image
(float Y, then cv2.filter2D with the full 11x11 Gaussian for each of the five SSIM statistics),
run in this same process on the same pairs. Prints wall and CPU seconds and the ratio.

    python benchmarks/profile_speed.py [--pairs 100] [--profiles matlab-y,rgb]
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from bench.metrics.profiles import PROFILES, compute_full_reference_many


def make_pairs(n: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """n (uint16 output, float target) pairs of 320x480 with rain-like differences."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.uniform(0, 1, (320, 480, 3)), (0, 0), 4)
    base = (base - base.min()) / (base.max() - base.min())
    outputs, targets = [], []
    for _ in range(n):
        target = np.round(np.clip(base + rng.normal(0, 0.05, base.shape), 0, 1) * 255) / 255
        output = np.clip(target + rng.normal(0, 0.02, base.shape), 0, 1)
        outputs.append(np.round(output * 65535).astype(np.uint16))
        targets.append(target)
    return outputs, targets


def basicsr_style(outputs: list[np.ndarray], targets: list[np.ndarray]) -> tuple[float, float]:
    """Mean Y-PSNR/SSIM the way BasicSR computes them, one image and one cv2.filter2D call at a time."""
    window = cv2.getGaussianKernel(11, 1.5)
    window = window @ window.T
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    psnrs, ssims = [], []
    for out16, tgt in zip(outputs, targets, strict=True):
        a = np.round(out16.astype(np.float64) / 65535 * 255)
        b = np.round(tgt * 255)
        ya = (a.astype(np.float32) / 255.0) @ np.array([65.481, 128.553, 24.966]) + 16.0
        yb = (b.astype(np.float32) / 255.0) @ np.array([65.481, 128.553, 24.966]) + 16.0
        psnrs.append(10 * np.log10(255.0**2 / np.mean((ya - yb) ** 2)))
        mu1 = cv2.filter2D(ya, -1, window)[5:-5, 5:-5]
        mu2 = cv2.filter2D(yb, -1, window)[5:-5, 5:-5]
        s1 = cv2.filter2D(ya**2, -1, window)[5:-5, 5:-5] - mu1**2
        s2 = cv2.filter2D(yb**2, -1, window)[5:-5, 5:-5] - mu2**2
        s12 = cv2.filter2D(ya * yb, -1, window)[5:-5, 5:-5] - mu1 * mu2
        ssim_map = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s1 + s2 + c2))
        ssims.append(ssim_map.mean())
    return float(np.mean(psnrs)), float(np.mean(ssims))


def timed(fn, *args) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--profiles", default=",".join(PROFILES))
    args = parser.parse_args()
    outputs, targets = make_pairs(args.pairs)
    compute_full_reference_many(outputs[:2], targets[:2], "matlab-y")  # warm-up
    base_wall, base_cpu, (base_psnr, base_ssim) = timed(basicsr_style, outputs, targets)
    print(f"{args.pairs} pairs of 480x320; cv2 threads {cv2.getNumThreads()}")
    print(f"{'code':<28}{'wall s':>8}{'cpu s':>8}{'vs BasicSR':>12}{'PSNR':>9}{'SSIM':>9}")
    print(f"{'BasicSR-style (Y)':<28}{base_wall:>8.3f}{base_cpu:>8.3f}{'1.00x':>12}{base_psnr:>9.3f}{base_ssim:>9.4f}")
    for name in args.profiles.split(","):
        wall, cpu, figures = timed(compute_full_reference_many, outputs, targets, name)
        print(f"{'bench ' + name:<28}{wall:>8.3f}{cpu:>8.3f}{base_wall / wall:>11.2f}x"
              f"{figures['psnr'].mean():>9.3f}{figures['ssim'].mean():>9.4f}")


if __name__ == "__main__":
    main()
