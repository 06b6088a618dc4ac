"""The one safe way to read a torch checkpoint: a checkpoint is untrusted input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from bench.errors import BadInputError


def read_torch_file(path: Path, owner: str, fix: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU (tensors and plain data only, no code).

    owner: who reads it, for the message (e.g. "method prenet:rain100l"); fix: what the user should do.
    Raises BadInputError naming the file when it cannot be read.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BadInputError(f"{owner}: cannot read checkpoint {path} ({type(exc).__name__}: {exc}); {fix}") from exc


def unwrap_state_dict(obj: Any, path: Path, owner: str, fix: str, wrappers: tuple[str, ...] = ("state_dict",),
                      strip_prefix: str = "module.") -> dict[str, Any]:
    """The state dict inside a loaded checkpoint ``obj``: the first of ``wrappers`` that holds a dict, else ``obj``
    itself, with a DataParallel ``strip_prefix`` removed from the keys. BadInputError names ``path`` otherwise."""
    for key in wrappers:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise BadInputError(f"{owner}: checkpoint {path} holds a {type(obj).__name__}, not a state dict; {fix}")
    return {k.removeprefix(strip_prefix): v for k, v in obj.items()} if strip_prefix else dict(obj)
