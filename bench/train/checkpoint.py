"""Atomic training checkpoints and the shipped model files.

A checkpoint holds the model, optimizer and lr schedule states, the iteration, the elapsed training time,
the RNG states and the config, all in types that ``torch.load(..., weights_only=True)`` accepts. Files are
written to a temporary name in the same folder and moved into place with ``os.replace``, so an interrupted
write never leaves a broken checkpoint behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from bench.errors import BadInputError
from bench.methods.checkpoints import read_torch_file


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` then move the temporary file onto ``path`` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Save a training state dict atomically."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a training checkpoint with ``weights_only=True``; BadInputError names the file when it is unreadable."""
    state = read_torch_file(path, "bench train", "delete it to start afresh or point out_dir at another run")
    for key in ("model", "optimizer", "schedule", "iteration", "config"):
        if key not in state:
            raise BadInputError(f"checkpoint {path}: no {key!r} entry, so it is not a training checkpoint of this project")
    return state


def save_model(path: Path, model: torch.nn.Module, sidecar: dict[str, Any]) -> Path:
    """Write the plain state dict (CPU tensors) to ``path`` and ``sidecar`` as JSON beside it; returns the JSON path."""
    state = {k: v.detach().to("cpu").clone().contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: torch.save(state, tmp))
    json_path = Path(path).with_suffix(".json")
    atomic_write(json_path, lambda tmp: tmp.write_text(json.dumps(sidecar, indent=2, sort_keys=False) + "\n"))
    return json_path
