"""The method plugin API.

A plugin is a :class:`DerainMethod` subclass with a class attribute ``info`` (:class:`MethodInfo`). The
harness owns everything else: devices, batching, tiling, timing, weights resolution and saving outputs.

    class MyMethod(DerainMethod):
        info = MethodInfo(name="mine", paper="...", year=2024, kind="learned",
                          variants={"default": Variant(weights=(WeightsFile("mine.pth", url=..., sha256=...),))})
        def load(self, device):
            self.net = MyNet().to(device).eval()
            self.net.load_state_dict(self.load_state_dict("mine.pth"))
        def derain(self, batch):           # float32 Bx3xHxW RGB in [0,1]
            return self.net(batch).clamp(0, 1)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import torch

from bench.errors import BadInputError, UnknownNameError

MethodKind = Literal["identity", "learned", "classical", "precomputed"]


@dataclass(frozen=True)
class WeightsFile:
    """One weights file a variant needs.

    filename: name inside ``<weights_dir>/<folder>/``; folder defaults to the method's name.
    url: official download location (None when a cloud drive is the only host: say how in ``how_to_get``).
    sha256: expected hash, verified when known.
    """

    filename: str
    url: str | None = None
    sha256: str | None = None
    folder: str | None = None
    how_to_get: str = ""


@dataclass(frozen=True)
class Variant:
    """A named set of weights (e.g. ``prenet:rain100l``) and what it was trained on."""

    weights: tuple[WeightsFile, ...] = ()
    description: str = ""
    trained_on: str = ""
    note: str = ""  # shown in reports, e.g. "retrained by third parties"
    #: the weights ship inside the installed package (trained by this project): nothing to download, and
    #: ``--methods all`` runs this variant besides the default one
    packaged: bool = False


@dataclass(frozen=True)
class MethodInfo:
    """Metadata shown by ``bench list methods`` and in reports."""

    name: str
    paper: str
    year: int | None
    kind: MethodKind
    description: str = ""
    code_url: str = ""
    variants: dict[str, Variant] = field(default_factory=lambda: {"default": Variant()})
    default_variant: str = "default"
    display_name: str = ""  # row label in tables (e.g. "PReNet"); defaults to name

    @property
    def label(self) -> str:
        return self.display_name or self.name


def canonical_spec(name: str, variant: str) -> str:
    """The one name of a method variant everywhere (store, CSV, tables): ``name:variant``, or ``name`` alone
    for a method whose only variant is the unnamed ``default`` (``rainy``, ``ddn``, the downstream ``gt`` row)."""
    return name if variant in ("", "default") else f"{name}:{variant}"


def variant_label(label: str, variant: str) -> str:
    """Display label of a variant: ``PReNet (rain100h)``, ``SAPNet (ours)``, ``Rainy``."""
    return label if variant in ("", "default") else f"{label} ({variant})"


class DerainMethod:
    """Base class of every deraining method plugin.

    Subclasses set ``info`` and implement :meth:`load` and :meth:`derain`. ``self.variant`` is the
    chosen variant name and ``self.weights`` maps each needed weights file name to its resolved path
    (filled in by the harness before :meth:`load`).
    """

    info: ClassVar[MethodInfo]
    #: largest side (px) processed in one piece; larger images are tiled with overlap. None: never tile.
    max_tile: ClassVar[int | None] = 1024
    #: pixels of overlap between tiles
    tile_overlap: ClassVar[int] = 32
    #: each image of a batch comes out exactly as if it were run alone, so the harness may batch equal-size
    #: images (``bench run --batch-size``); False: always one image per :meth:`derain` call
    batch_independent: ClassVar[bool] = True

    def __init__(self, variant: str | None = None) -> None:
        variant = variant or self.info.default_variant
        if variant not in self.info.variants:
            import difflib

            close = difflib.get_close_matches(variant, list(self.info.variants), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise UnknownNameError(
                f"method {self.info.name}: unknown variant {variant!r}.{hint} "
                f"Known variants: {', '.join(sorted(self.info.variants))}."
            )
        self.variant = variant
        self.weights: dict[str, Path] = {}
        self.device = torch.device("cpu")
        #: the resolved data root, set by the harness (precomputed methods find their outputs under it)
        self.data_root: Path | None = None

    @property
    def spec(self) -> str:
        """The canonical spec, ``name:variant`` (``name`` alone when the variant is the unnamed ``default``):
        ``prenet`` and ``prenet:rain100h`` both give ``prenet:rain100h``."""
        return canonical_spec(self.info.name, self.variant)

    @property
    def label(self) -> str:
        """Display label beside the spec in tables (``PReNet (rain100h)``)."""
        return variant_label(self.info.label, self.variant)

    @property
    def variant_info(self) -> Variant:
        return self.info.variants[self.variant]

    def required_weights(self) -> tuple[WeightsFile, ...]:
        return self.variant_info.weights

    def unavailable_reason(self) -> str | None:
        """None when the method can run here, else why not and how to fix it (checked before any work,
        after weights resolution; e.g. a precomputed folder or a shipped checkpoint that is absent)."""
        return None

    def local_weights(self) -> dict[str, Path]:
        """Weights files read from outside the weights dir (a checkpoint shipped in the package or configured in
        bench.toml): file name -> path. They are hashed into the results key like downloaded weights, so results
        of a replaced checkpoint are never mixed with those of the old one."""
        return {}

    def load(self, device: torch.device) -> None:
        """Build the model on ``device`` and load its weights (``self.weights``)."""
        self.device = device

    def derain(self, batch: torch.Tensor) -> torch.Tensor:
        """batch: float32 Bx3xHxW RGB in [0,1] -> derained float32 Bx3xHxW in [0,1]."""
        raise NotImplementedError

    def network(self) -> torch.nn.Module | None:
        """The torch module whose parameters/FLOPs are reported (None for non-network methods)."""
        return None

    # helpers for plugins -------------------------------------------------------------------------
    def weights_path(self, filename: str) -> Path:
        try:
            return self.weights[filename]
        except KeyError:
            raise BadInputError(
                f"method {self.spec}: weights file {filename!r} was not resolved; declare it in the variant's weights"
            ) from None

    def load_state_dict(self, filename: str, *, strip_prefix: str = "module.") -> dict[str, torch.Tensor]:
        """Load a checkpoint safely (``weights_only=True``) and strip a DataParallel prefix."""
        from bench.methods.checkpoints import read_torch_file, unwrap_state_dict

        path, owner = self.weights_path(filename), f"method {self.spec}"
        fix = "delete it and fetch it again (see `bench list methods`)"
        return unwrap_state_dict(read_torch_file(path, owner, fix), path, owner, fix, strip_prefix=strip_prefix)


class PrecomputedMethod(DerainMethod):
    """A method whose outputs already exist on disk: one image per input, named by the input's stem.

    Subclasses (or instances built by :func:`precomputed_method`) implement :meth:`output_path`.
    """

    max_tile = None

    def output_path(self, dataset: str, image_id: str) -> Path | None:
        """Path of the published output for ``image_id`` of ``dataset``, or None if there is none."""
        raise NotImplementedError

    def derain(self, batch: torch.Tensor) -> torch.Tensor:  # pragma: no cover - not used for precomputed
        raise BadInputError(f"method {self.spec} is precomputed: it has no model to run")
