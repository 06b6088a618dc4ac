"""Efficiency figures of a method: parameters, FLOPs, median time per image and peak memory.

FLOPs come from torch's own ``torch.utils.flop_counter.FlopCounterMode`` (multiply-adds counted as two
operations) at a stated input size, by default 481x321 (the original Rain100L/H size).
"""

from __future__ import annotations

import resource
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.methods.api import DerainMethod

DEFAULT_SIZE = (321, 481)  # height, width


def count_parameters(module: torch.nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def measure_efficiency(method: DerainMethod, device: torch.device, size: tuple[int, int] = DEFAULT_SIZE,
                       repeats: int = 3) -> dict[str, float]:
    """Parameters, GFLOPs, median ms/image after one warm-up, and peak memory (MB) of ``method``
    (already loaded) on a random image of ``size`` (H, W)."""
    generator = torch.Generator().manual_seed(0)
    image = torch.rand((1, 3, *size), generator=generator).to(device)
    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            method.derain(image)
        flops = counter.get_total_flops()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            method.derain(image)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append((time.perf_counter() - start) * 1000.0)
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
    else:  # resident set high-water mark of the process (KiB on Linux)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {
        "params": float(count_parameters(method.network())),
        "flops": flops / 1e9,
        "ms_per_image": statistics.median(times),
        "peak_memory_mb": peak_mb,
    }
