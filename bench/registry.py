"""One lazy registry mechanism for methods, datasets and metrics.

Entries are ``"module:attribute"`` placeholders; nothing is imported until an entry is loaded, so
start-up stays cheap. Built-in methods arrive through the same ``bench.methods`` entry-point group as
third-party ones; a local file can be added with :func:`load_plugin_file`.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Generic, TypeVar

from bench.errors import BadInputError, UnknownNameError

T = TypeVar("T")


@dataclass
class Entry:
    """A registered name and where its object lives."""

    name: str
    target: str | Callable[[], Any] | Any  # "module:attr", a factory, or the object itself
    source: str = "builtin"  # builtin | entry-point:<dist> | file:<path>
    description: str = ""


class Registry(Generic[T]):
    """Name -> lazily imported object, with entry-point discovery and typo suggestions."""

    def __init__(self, kind: str, group: str | None = None) -> None:
        self.kind = kind
        self.group = group
        self._entries: dict[str, Entry] = {}
        self._loaded: dict[str, T] = {}
        self._discovered = False

    def register(self, name: str, target: Any, *, source: str = "builtin", description: str = "") -> None:
        """Register ``name``; ``target`` is ``"module:attr"`` or the object itself."""
        self._entries[name] = Entry(name, target, source, description)
        self._loaded.pop(name, None)

    def _discover(self) -> None:
        if self._discovered or self.group is None:
            self._discovered = True
            return
        self._discovered = True
        for ep in entry_points(group=self.group):
            if ep.name in self._entries and not self._entries[ep.name].source.startswith("entry-point"):
                continue
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else "?"
            self._entries[ep.name] = Entry(ep.name, ep.value, f"entry-point:{dist_name}")

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._entries)

    def entry(self, name: str) -> Entry:
        self._discover()
        if name not in self._entries:
            close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}.{hint} Run `bench list {self.kind}s` to see every registered {self.kind}."
            )
        return self._entries[name]

    def __contains__(self, name: str) -> bool:
        self._discover()
        return name in self._entries

    def load(self, name: str) -> T:
        """Import (once) and return the object registered as ``name``."""
        if name in self._loaded:
            return self._loaded[name]
        entry = self.entry(name)
        target = entry.target
        if isinstance(target, str) and ":" in target:
            module_name, _, attr = target.partition(":")
            try:
                module = importlib.import_module(module_name)
                obj = module
                for part in attr.split("."):
                    obj = getattr(obj, part)
            except Exception as exc:  # a broken plugin must not take the harness down
                raise BadInputError(
                    f"{self.kind} {name!r}: cannot import {target} ({entry.source}): {type(exc).__name__}: {exc}. "
                    f"Fix or uninstall the plugin that provides it."
                ) from exc
        else:
            obj = target
        self._loaded[name] = obj
        return obj

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


_PLUGIN_FILES: list[Path] = []  # local plugin files loaded in this process, in order


def loaded_plugin_files() -> list[Path]:
    """The local plugin files this process has loaded (a worker process loads the same ones)."""
    return list(_PLUGIN_FILES)


def load_plugin_file(path: str | Path) -> None:
    """Import a local Python file; its ``DerainMethod`` and ``TaskModel`` subclasses are registered under
    their ``info.name``."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise BadInputError(f"plugin file {path}: not found. Pass an existing .py file to --plugin.")
    module_name = f"bench_plugin_{path.stem}_{abs(hash(str(path))) % 10**8}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise BadInputError(f"plugin file {path}: not a Python module. Pass a .py file to --plugin.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise BadInputError(f"plugin file {path}: import failed: {type(exc).__name__}: {exc}") from exc
    from bench.methods.api import DerainMethod
    from bench.methods.registry import METHODS
    from bench.tasks.api import TaskModel
    from bench.tasks.registry import TASK_MODELS

    for value in vars(module).values():
        if not (isinstance(value, type) and value.__module__ == module_name and getattr(value, "info", None) is not None):
            continue
        if issubclass(value, DerainMethod):
            METHODS.register(value.info.name, value, source=f"file:{path}")
        elif issubclass(value, TaskModel):
            TASK_MODELS.register(value.info.name, value, source=f"file:{path}")
    if path not in _PLUGIN_FILES:
        _PLUGIN_FILES.append(path)
