"""The arithmetic a method's network runs in (``bench run --precision``): fp32, bf16 or fp16.

fp32 (the default) is the only precision for figures compared with papers. bf16 runs the network under
torch's CPU autocast (fast only on CPUs with native bf16: avx512_bf16 or AMX); on CUDA, bf16 and fp16 run
under autocast with the network and its input in channels_last. Methods without a learned network
(the rainy input, classical and precomputed methods) always run, and are recorded, in fp32.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from bench.errors import BadInputError
from bench.methods.api import DerainMethod
from bench.results.store import FP32

PRECISIONS = (FP32, "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively (CUDA with bf16 support; a CPU with AVX512-BF16 or AMX).
    Elsewhere bf16 autocast is emulated and many times slower than float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split()))



def parse_precision(text: str) -> str:
    """``--precision`` as given -> fp32 | bf16 | fp16."""
    name = text.strip().lower()
    if name not in PRECISIONS:
        raise BadInputError(f"--precision {text!r}: choose one of {', '.join(PRECISIONS)} (fp32 is the default and the "
                            f"only one for published-figure comparisons)")
    return name


def check_precision(precision: str, device_type: str) -> str | None:
    """Raises when ``precision`` cannot run on ``device_type`` (cpu | cuda); returns a warning or None."""
    if precision == "fp16" and device_type != "cuda":
        raise BadInputError("--precision fp16 needs a CUDA device (CPU autocast runs fp16 emulated); use bf16 on a "
                            "CPU, or --device cuda")
    if precision != "bf16":
        return None

    if native_bf16(torch.device(device_type)):
        return None
    if device_type == "cuda":
        raise BadInputError("--precision bf16: this GPU has no bf16 support; use fp16")
    return ("--precision bf16: this CPU has no native bf16 instructions (avx512_bf16 or AMX), so bf16 runs emulated, "
            "many times slower than fp32")


def method_precision(method: DerainMethod, precision: str) -> str:
    """The precision ``method`` runs and is recorded in: ``precision`` for learned networks, else fp32."""
    return precision if method.info.kind == "learned" else FP32


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast to ``precision`` on ``device`` (nothing for fp32)."""
    if precision == FP32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=_DTYPES[precision])


def channels_last(device: torch.device, precision: str) -> bool:
    """Whether the network and its input use channels_last (reduced precision on CUDA: tensor cores prefer it)."""
    return device.type == "cuda" and precision != FP32


def load_method(method: DerainMethod, device: torch.device, precision: str) -> None:
    """``method.load(device)``, then its network in channels_last where :func:`channels_last` says so."""
    method.load(device)
    if channels_last(device, precision):
        network = method.network()
        if network is not None:
            network.to(memory_format=torch.channels_last)
