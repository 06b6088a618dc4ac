"""The generic ``precomputed`` method: a folder of outputs made elsewhere, evaluated like any method.

Layout of a configured folder (files named by the input's stem, any image extension)::

    <folder>/<image_id>.<ext>              # one flat folder, or
    <folder>/<dataset>/<image_id>.<ext>    # one sub-folder per dataset (preferred when it exists)

Folders are registered by name, from bench.toml::

    [precomputed.mymethod]
    folder = "path/to/outputs"

and evaluated as ``precomputed:mymethod``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

from bench.errors import BadInputError, UnavailableError, UnknownNameError
from bench.methods.api import MethodInfo, PrecomputedMethod, Variant

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


def find_by_stem(folder: Path, stem: str) -> Path | None:
    """The image file in ``folder`` whose stem is ``stem`` (extension case-insensitive), or None.

    Raises BadInputError when several images share that stem (e.g. ``3.png`` and ``3.jpg``).
    """
    if not folder.is_dir():
        return None
    matches = sorted(p for p in folder.glob(f"{_glob_escape(stem)}.*")
                     if p.is_file() and p.stem == stem and p.suffix.lower() in IMAGE_EXTENSIONS)
    if len(matches) > 1:
        raise BadInputError(
            f"{folder}: several outputs for {stem!r} ({', '.join(p.name for p in matches)}); keep one of them"
        )
    return matches[0] if matches else None


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def find_output(folder: Path, dataset: str, image_id: str) -> Path | None:
    """Output for ``image_id``: ``<folder>/<dataset>/`` when that sub-folder exists, else ``<folder>/``."""
    sub = folder / dataset
    return find_by_stem(sub if sub.is_dir() else folder, image_id)


class Precomputed(PrecomputedMethod):
    """Outputs read from a named folder registered with :meth:`configure`; variants are the folder names."""

    info = MethodInfo(
        name="precomputed",
        display_name="Precomputed",
        paper="outputs computed elsewhere",
        year=None,
        kind="precomputed",
        description="a folder of derained images named by input stem, registered in bench.toml [precomputed.NAME]",
        variants={},
        default_variant="",
    )
    _folders: ClassVar[dict[str, Path]] = {}

    @classmethod
    def configure(cls, name: str, folder: Path | str) -> None:
        """Register ``folder`` as variant ``name`` (``precomputed:name``). The folder is checked when used."""
        if not name or ":" in name:
            raise BadInputError(f"[precomputed.{name}]: invalid name; use letters, digits, '-' or '_'")
        cls._folders[name] = Path(folder).expanduser()
        variants = {**cls.info.variants, name: Variant(description=f"outputs in {Path(folder)}")}
        cls.info = dataclasses.replace(cls.info, variants=variants)

    @classmethod
    def forget(cls, name: str) -> None:
        """Unregister a folder (used by tests)."""
        cls._folders.pop(name, None)
        variants = {k: v for k, v in cls.info.variants.items() if k != name}
        cls.info = dataclasses.replace(cls.info, variants=variants)

    def __init__(self, variant: str | None = None) -> None:
        if not variant or variant not in self._folders:
            known = ", ".join(sorted(self._folders)) or "none"
            raise UnknownNameError(
                f"method precomputed:{variant or ''}: no output folder is registered under {variant!r} "
                f"(registered: {known}). Add [precomputed.{variant or 'NAME'}] folder = \"path/to/outputs\" "
                f"to bench.toml and run it as precomputed:{variant or 'NAME'}."
            )
        super().__init__(variant)

    @property
    def folder(self) -> Path:
        return self._folders[self.variant]

    def unavailable_reason(self) -> str | None:
        """Why this folder cannot be used (None when it can)."""
        if not self.folder.is_dir():
            return (f"method {self.spec}: output folder {self.folder} does not exist; "
                    f"fix [precomputed.{self.variant}] folder in bench.toml")
        return None

    def output_path(self, dataset: str, image_id: str) -> Path | None:
        """The output for ``image_id`` of ``dataset``, or None when the folder has none."""
        reason = self.unavailable_reason()
        if reason:
            raise UnavailableError(reason)
        return find_output(self.folder, dataset, image_id)

    def require_output(self, dataset: str, image_id: str) -> Path:
        """Like :meth:`output_path`, but a missing output is an error naming the folder and the stem."""
        path = self.output_path(dataset, image_id)
        if path is None:
            raise BadInputError(
                f"method {self.spec}: no output named {image_id}.<png|jpg|...> for dataset {dataset} in "
                f"{self.folder / dataset} or {self.folder}; add it or leave {image_id} out of the run"
            )
        return path
