"""Efficiency figures of a method: parameters, FLOPs, median time per image and peak memory.

FLOPs come from torch's own ``torch.utils.flop_counter.FlopCounterMode`` at a stated input size, by
default 481x321 (the original Rain100L/H size). It counts a multiply-add as two operations (so GFLOPs
are twice the "GMACs" that thop/ptflops print) and counts convolutions and matrix products only
(no bias additions, activations or normalisation). The input size is stored with the figures
(metrics ``input_height`` and ``input_width``) so a table can state it.
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
    """Number of parameters (every element of every parameter tensor); 0 for a method without a network."""
    if module is None:
        return 0
    return sum(p.numel() for p in module.parameters())


def count_flops(fn, *inputs: torch.Tensor) -> int:
    """Floating-point operations of ``fn(*inputs)`` (2 per multiply-add), as torch's FlopCounterMode counts."""
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        fn(*inputs)
    return int(counter.get_total_flops())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_efficiency(method: DerainMethod, device: torch.device, size: tuple[int, int] = DEFAULT_SIZE,
                       repeats: int = 3, warmup: int = 1) -> dict[str, float]:
    """Figures of a loaded ``method`` on one seeded random RGB image of ``size`` (H, W) in pixels.

    Returns params (count), flops (GFLOPs, 2 per multiply-add), ms_per_image (median wall ms of
    ``repeats`` runs after ``warmup`` runs), peak_memory_mb (CUDA: peak allocated by torch during the
    timed runs; CPU: the process's resident high-water mark, an upper bound) and the input size.
    """
    if repeats < 1:
        raise ValueError(f"repeats={repeats}: need at least one timed run")
    height, width = size
    generator = torch.Generator().manual_seed(0)
    image = torch.rand((1, 3, height, width), generator=generator).to(device)
    flops = count_flops(method.derain, image)
    with torch.inference_mode():
        for _ in range(warmup):
            method.derain(image)
        _sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            method.derain(image)
            _sync(device)
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
        "input_height": float(height),
        "input_width": float(width),
    }
