"""Every weights file the registered methods and task models declare, with its local state.

States: ``present`` (sha256 matches, or none is recorded), ``checksum mismatch``, ``missing``. The files live
at ``<weights_dir>/<folder or owner name>/<file>``, exactly where the runner's weights resolution looks.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import BenchError, UnavailableError
from bench.methods.api import WeightsFile, canonical_spec
from bench.methods.weights import download, sha256_file

PRESENT, MISMATCH, MISSING = "present", "checksum mismatch", "missing"


@dataclass
class WeightsEntry:
    """One weights file and who needs it (``owner``: method | task model; specs: the variants using it)."""

    owner: str
    name: str
    file: WeightsFile
    path: Path
    specs: list[str] = field(default_factory=list)
    state: str = MISSING

    @property
    def has_url(self) -> bool:
        return bool(self.file.url)

    def instructions(self) -> str:
        """How to obtain the file by hand, and where to put it."""
        source = f"download {self.file.url}" if self.file.url else "it has no direct download"
        extra = f" ({self.file.how_to_get})" if self.file.how_to_get else ""
        return f"{source}{extra}; put it at {self.path}"


def file_state(path: Path, wf: WeightsFile) -> str:
    """present | checksum mismatch | missing (sha256 cached per process by path, size and mtime)."""
    if not path.is_file():
        return MISSING
    if wf.sha256 and sha256_file(path) != wf.sha256:
        return MISMATCH
    return PRESENT


def _variants(cls) -> list[str]:
    """Variants whose files can be listed: every declared one (an open-variant task model: its default)."""
    info = cls.info
    if getattr(info, "open_variants", False):
        return [info.default_variant]
    return list(info.variants)


def _owners():
    """(owner kind, class) of every registered method and task model that loads."""
    from bench.methods.registry import METHODS, method_class
    from bench.tasks.registry import TASK_MODELS, task_model_class

    for registry, loader, owner in ((METHODS, method_class, "method"), (TASK_MODELS, task_model_class, "task model")):
        for name in registry.names():
            try:
                yield owner, loader(name)
            except BenchError:
                continue  # a broken plugin: `bench list` reports it


def variant_files(cls, variant: str) -> tuple[WeightsFile, ...]:
    """The weights files one variant needs (what the runner would resolve); () when the plugin fails."""
    try:
        return tuple(cls(variant).required_weights())
    except Exception:  # noqa: BLE001 - a plugin that cannot even be instantiated has no files to list
        return ()


def inventory(weights_dir: Path) -> list[WeightsEntry]:
    """Every declared weights file, one entry per target path, in registry order."""
    entries: dict[Path, WeightsEntry] = {}
    for owner, cls in _owners():
        for variant in _variants(cls):
            for wf in variant_files(cls, variant):
                path = weights_dir / (wf.folder or cls.info.name) / wf.filename
                entry = entries.setdefault(path, WeightsEntry(owner, cls.info.name, wf, path))
                entry.specs.append(canonical_spec(cls.info.name, variant))
    for entry in entries.values():
        entry.state = file_state(entry.path, entry.file)
    return list(entries.values())


def select(entries: list[WeightsEntry], name: str) -> list[WeightsEntry]:
    """Entries named by ``name``: ``all``, a method or task-model name, a spec, or a file name."""
    if name == "all":
        return entries
    return [e for e in entries if name in (e.name, e.file.filename) or name in e.specs]


@dataclass
class FetchResult:
    entry: WeightsEntry
    outcome: str  # fetched | already present | manual | failed
    message: str = ""


def fetch(entries: list[WeightsEntry], progress_factory: Callable[[WeightsEntry], Callable[[int, int | None], None]]
          | None = None, timeout: float = 20.0) -> list[FetchResult]:
    """Download every missing or mismatching file that has a direct URL, verifying its sha256.

    A file without a URL is reported with its instructions (``manual``). After a network failure, further
    files from the same host are not tried (offline: one quick failure, never a hang per file).
    """
    results, dead_hosts = [], {}
    for entry in entries:
        if entry.state == PRESENT:
            results.append(FetchResult(entry, "already present"))
            continue
        if not entry.has_url:
            results.append(FetchResult(entry, "manual", entry.instructions()))
            continue
        parsed = urllib.parse.urlparse(entry.file.url)
        host = parsed.netloc or parsed.scheme
        if host in dead_hosts:
            results.append(FetchResult(entry, "failed", f"not tried, {host} did not answer ({dead_hosts[host]}); "
                                                        f"to do it by hand: {entry.instructions()}"))
            continue
        try:  # download() writes beside the target and replaces it only once the sha256 checks out
            download(entry.file.url, entry.path, entry.file.sha256, timeout=timeout,
                     progress=progress_factory(entry) if progress_factory else None)
        except UnavailableError as exc:  # checksum of the downloaded file
            results.append(FetchResult(entry, "failed", f"{exc}; the file was not kept"))
            continue
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            if not isinstance(exc, urllib.error.HTTPError) and host:
                dead_hosts[host] = f"{type(exc).__name__}: {reason}"
            results.append(FetchResult(entry, "failed", f"{type(exc).__name__}: {reason} (offline?); to do it by hand: "
                                                        f"{entry.instructions()}"))
            continue
        entry.state = file_state(entry.path, entry.file)
        results.append(FetchResult(entry, "fetched", str(entry.path)))
    return results
