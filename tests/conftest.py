"""Shared fixtures. Tests run offline: hubs are switched off and caches are project-local."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", str(PROJECT_ROOT / ".cache" / "ultralytics"))
os.environ.setdefault("TORCH_HOME", str(PROJECT_ROOT / ".cache" / "torch"))
os.environ.setdefault("BENCH_NO_DOWNLOAD", "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the project root; skips the test where it is absent (a user's machine)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (only present on the development machines)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_weights(shared_data: Path) -> Path:
    path = shared_data / "weights"
    if not path.is_dir():
        pytest.skip(f"official weights not found at {path}")
    return path
