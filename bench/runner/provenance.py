"""What a run records about itself: git commit, package versions, config hash, device, time."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version

from bench.config import PROJECT_ROOT, Settings

_PACKAGES = ("derain-bench", "torch", "torchvision", "numpy", "scipy", "scikit-image", "pyiqa", "ultralytics", "pandas")


def git_commit() -> str:
    """HEAD of the project checkout, with "-dirty" when it has uncommitted changes; "unknown" outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def provenance(settings: Settings, device: str, command: str, executor: str = "local") -> dict:
    """What the runs table records at the start of a run; the number of workers and the nodes that did the
    work are added when it ends (ResultsStore.finish_run)."""
    return {
        "command": command,
        "executor": executor,
        "git_commit": git_commit(),
        "versions": package_versions(),
        "config_hash": settings.config_hash(),
        "config": {k: str(v) for k, v in vars(settings).items()},
        "device": device,
        "host": f"{platform.system()} {platform.machine()}",
    }
