"""Weights resolution: the weights dir (verified by sha256), else the official URL, else a clear error."""

from __future__ import annotations

import hashlib
import os
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bench.errors import UnavailableError
from bench.methods.api import DerainMethod, WeightsFile  # task models (bench.tasks.api) resolve the same way

_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def sha256_file(path: Path) -> str:
    """sha256 of a file, cached by (path, size, mtime) within the process."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _HASH_CACHE:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        _HASH_CACHE[key] = digest.hexdigest()
    return _HASH_CACHE[key]


def weights_hash(paths: dict[str, Path]) -> str:
    """Short hash identifying a set of weights files ("none" for methods without weights)."""
    if not paths:
        return "none"
    digest = hashlib.sha256()
    for name in sorted(paths):
        digest.update(f"{name}={sha256_file(paths[name])};".encode())
    return digest.hexdigest()[:12]


def _missing_message(method: DerainMethod, wf: WeightsFile, target: Path, why: str) -> str:
    source = f"download it from {wf.url}" if wf.url else "it has no direct download"
    extra = f" ({wf.how_to_get})" if wf.how_to_get else ""
    owner = getattr(method, "owner", f"method {method.spec}")
    return (f"{owner}: weights file {wf.filename} {why}; {source}{extra} "
            f"and put it in {target.parent}/, or set BENCH_WEIGHTS_DIR / --weights-dir")


def download(url: str, target: Path, sha256: str | None, timeout: float = 20.0,
             progress: Callable[[int, int | None], None] | None = None) -> None:
    """Download ``url`` (http(s) or file://) to ``target`` atomically, verifying the sha256 when given.

    timeout: seconds without any answer before giving up (offline machines fail at once on the name lookup);
    progress: called with (bytes so far, total bytes or None) after every chunk.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            length = response.headers.get("Content-Length")
            total, done = (int(length) if length and length.isdigit() else None), 0
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
        if sha256 and digest.hexdigest() != sha256:
            raise UnavailableError(f"{url}: downloaded file has sha256 {digest.hexdigest()}, expected {sha256}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def resolve_weights(method: DerainMethod, weights_dir: Path, allow_download: bool = True) -> dict[str, Path]:
    """Paths of every weights file ``method`` (a deraining method or a task model) needs.
    Raises UnavailableError naming file, URL and folder."""
    resolved: dict[str, Path] = {}
    for wf in method.required_weights():
        target = weights_dir / (wf.folder or method.info.name) / wf.filename
        if target.is_file():
            if wf.sha256 and sha256_file(target) != wf.sha256:
                raise UnavailableError(_missing_message(
                    method, wf, target, f"at {target} has the wrong sha256 (expected {wf.sha256[:12]}…; corrupt or another release)"))
            resolved[wf.filename] = target
            continue
        if not (allow_download and wf.url):
            why = f"not found at {target}" + ("" if allow_download or not wf.url else " (downloads are off)")
            raise UnavailableError(_missing_message(method, wf, target, why))
        try:
            download(wf.url, target, wf.sha256)
        except UnavailableError:
            raise
        except Exception as exc:  # offline, HTTP error, timeout
            raise UnavailableError(_missing_message(
                method, wf, target, f"not found at {target} and the download failed ({type(exc).__name__}: {exc})")) from exc
        resolved[wf.filename] = target
    if isinstance(method, DerainMethod):
        resolved.update(method.local_weights())
    return resolved
