"""Method plugins for the PReNet family: ``prenet``, ``prenet_r``, ``prn``, ``prn_r``.

Variants name the official checkpoints (csdwren/PReNet, ``logs/<Dataset>/<Model>/net_latest.pth``) by the
test set that matches their training set: ``rain100h`` (trained on RainTrainH, 1,254 pairs), ``rain100l``
(RainTrainL), ``rain1400`` (Rain12600). ``prenet:real`` is the official real-rain checkpoint, which has a
different architecture (see :class:`~methods.prenet.networks.PReNetReal`). ``prenet:ours`` loads a
checkpoint trained by this project and shipped inside the package.

:class:`RecurrentNetMethod` is the shared plugin logic (also used by SAPNet).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from bench.errors import BadInputError, UnavailableError
from bench.methods.api import DerainMethod, MethodInfo, Variant, WeightsFile
from bench.methods.checkpoints import read_torch_file, unwrap_state_dict
from methods.prenet import networks as nets

CODE_URL = "https://github.com/csdwren/PReNet"
_COMMIT = "6d908d1e3c7ff5c26fee624112297ad1c8603ca7"  # the commit the recorded hashes were taken from
_PAPER = "Ren et al., Progressive Image Deraining Networks: A Better and Simpler Baseline, CVPR 2019"

_TRAINED_ON = {
    "rain100h": "RainTrainH (1,254 pairs; the Rain100H training set without its test backgrounds)",
    "rain100l": "RainTrainL (200 pairs)",
    "rain1400": "Rain12600 (12,600 pairs, Fu et al.)",
}
_LOG_DATASET = {"rain100h": "Rain100H", "rain100l": "Rain100L", "rain1400": "Rain1400"}

#: sha256 of the official files, keyed by (log dataset folder, official model folder)
_SHA256 = {
    ("Rain100H", "PReNet6"): "127c0098787c5272f1f8583f6c5202e7ef674f750cd145a1691912a6d9e96210",
    ("Rain100H", "PReNet6_r"): "ece8127c651cf49026d998fa36857cb9d462c92cf535b640a377fc025f765b5f",
    ("Rain100H", "PRN6"): "f1d56a7df0851eb087652663781d3f34c4c37a4c7ddd9a3f0802abbede1a06c2",
    ("Rain100H", "PRN6_r"): "99242ce096c9c617bd529a5e189797e8955a4b8611d355974c7c1c64a18b9074",
    ("Rain100L", "PReNet6"): "cb9b743bb33cf6e5c56ba45f8ade93add46266dea9fa582e1934dc5eed942333",
    ("Rain100L", "PReNet6_r"): "31dd4419cdb0f4da623d974747113d60e2c22803598c39dcf03d789f86a7f62b",
    ("Rain100L", "PRN6"): "ed4be5b78f76dcec5c781e1655dee48c2a90b56993de555945d72e31848aea99",
    ("Rain100L", "PRN6_r"): "87ee3b1c027b33e7e532a4881c3b077d100cf40c65dd2843690600e3023acee0",
    ("Rain1400", "PReNet6"): "d5744dc2e35d73187a3f34936b3413884d293277073ffb78b961a78e65337879",
    ("Rain1400", "PReNet6_r"): "c639c19b342d6ae977b7ff8a4b2fbeb24179510a6e57b8bf5ef32d6b071fc8d5",
    ("Rain1400", "PRN6"): "c6620860a51b54afec0c1eebe412f0f1ca00128100f5b23c13758605206a0bf2",
    ("Rain1400", "PRN6_r"): "c0f7f18f3d33e26f50af8c693494a03c2776c627140a1d8e0514edd53e9398fb",
}


#: variant name (or "*" for every other variant) -> network constructor
NetworkFactories = dict[str, Callable[..., nn.Module]]


def _raw_url(repo: str, commit: str, path: str) -> str:
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


def official_variant(dataset: str, model: str) -> Variant:
    """Variant for the official checkpoint ``logs/<Dataset>/<model>/net_latest.pth`` (dataset: rain100h ...)."""
    log = _LOG_DATASET[dataset]
    path = f"logs/{log}/{model}/net_latest.pth"
    return Variant(
        weights=(
            WeightsFile(
                f"{log}_{model}_net_latest.pth",
                url=_raw_url("csdwren/PReNet", _COMMIT, path),
                sha256=_SHA256[(log, model)],
                folder="prenet",
                how_to_get=f"download {path} from {CODE_URL} and save it under the name above",
            ),
        ),
        description=f"official {model} checkpoint for {log}",
        trained_on=_TRAINED_ON[dataset],
    )


def read_checkpoint(path: Path, spec: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint safely (``weights_only=True``): a plain state dict, or a dict with ``state_dict``
    and optional ``network`` (constructor keyword arguments). Strips a DataParallel ``module.`` prefix.
    """
    owner, fix = f"method {spec}", "replace the file with a valid checkpoint"
    obj = read_torch_file(path, owner, fix)
    kwargs: dict[str, Any] = {}
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        kwargs = dict(obj.get("network") or {})
    return unwrap_state_dict(obj, path, owner, fix), kwargs


def _sidecar(checkpoint: Path) -> dict[str, Any]:
    """The JSON sidecar ``bench train`` writes beside a model (same name, .json); {} when absent or unreadable."""
    try:
        data = json.loads(Path(checkpoint).with_suffix(".json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class RecurrentNetMethod(DerainMethod):
    """Plugin logic shared by the PReNet family and SAPNet.

    Subclasses set ``info`` and ``networks``: the network constructor for each variant (``"*"`` for all
    others). Variants listed in ``shipped`` load a checkpoint file inside the package instead of one from
    the weights dir.
    """

    networks: ClassVar[NetworkFactories]
    #: variant -> checkpoint path inside the package (trained by this project)
    shipped: ClassVar[dict[str, Path]] = {}

    net: nn.Module | None = None

    def required_weights(self) -> tuple[WeightsFile, ...]:
        # A shipped checkpoint is part of the installed package, not of the user's weights dir, so the
        # harness has nothing to resolve or download for it; load() reads it directly.
        if self.variant in self.shipped:
            return ()
        return super().required_weights()

    #: variants registered from bench.toml ``[checkpoints."METHOD:NAME"]`` (a subset of ``shipped``)
    configured: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def configure_checkpoint(cls, name: str, path: Path | str) -> None:
        """Register a checkpoint written by ``bench train`` as variant ``name`` (``<method>:<name>``).

        The network options it was trained with (e.g. ``use_dilation`` for an ablation model) come from the JSON
        sidecar beside it. The file is checked when the variant is used."""
        if not name or ":" in name or (name in cls.info.variants and name not in cls.configured):
            raise BadInputError(f"[checkpoints.\"{cls.info.name}:{name}\"]: invalid or taken variant name; use letters, "
                                f"digits, '-' or '_' and none of {', '.join(cls.info.variants)}")
        path = Path(path).expanduser()
        cls.shipped = {**cls.shipped, name: path}
        cls.configured = cls.configured | {name}
        variant = Variant(description=f"checkpoint {path}", trained_on=_sidecar(path).get("data", ""),
                          note="trained with `bench train`")
        cls.info = dataclasses.replace(cls.info, variants={**cls.info.variants, name: variant})

    def _build(self, **kwargs: Any) -> nn.Module:
        factory = self.networks.get(self.variant) or self.networks["*"]
        return factory(**kwargs)

    def local_weights(self) -> dict[str, Path]:
        path = self.shipped.get(self.variant)
        return {path.name: path} if path is not None and path.is_file() else {}

    def unavailable_reason(self) -> str | None:
        path = self.shipped.get(self.variant)
        if path is None or path.is_file():
            return None
        if self.variant in self.configured:
            return (f"method {self.spec}: checkpoint {path} not found; fix [checkpoints.\"{self.spec}\"] file in "
                    f"bench.toml or train it with `bench train {self.info.name}`")
        return (f"method {self.spec}: the project's own checkpoint {path} is not in this installation "
                f"(it is produced by `bench train`); use an official variant instead "
                f"({', '.join(v for v in self.info.variants if v not in self.shipped)})")

    def load(self, device: torch.device) -> None:
        """Build the variant's network on ``device`` and load its weights with ``strict=True``."""
        self.device = device
        if self.variant in self.shipped:
            reason = self.unavailable_reason()
            if reason is not None:
                raise UnavailableError(reason)
            path = self.shipped[self.variant]
            state, kwargs = read_checkpoint(path, self.spec)
            kwargs = {**self._trained_options(path), **kwargs}
        else:
            (weights,) = self.required_weights()
            state, _ = read_checkpoint(self.weights_path(weights.filename), self.spec)
            kwargs = {}  # official checkpoints: the variant's default network
        net = self._build(**kwargs)
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise BadInputError(
                f"method {self.spec}: checkpoint does not match {type(net).__name__}: {exc}. "
                f"Check that the file belongs to this variant."
            ) from exc
        self.net = net.to(device).eval()

    def _trained_options(self, path: Path) -> dict[str, Any]:
        """Network options a ``bench train`` checkpoint was trained with (its sidecar's config), restricted to the
        constructor's own keyword arguments; {} without a sidecar."""
        config = _sidecar(path).get("config") or {}
        factory = self.networks.get(self.variant) or self.networks["*"]
        accepted = inspect.signature(factory).parameters
        return {k: v for k, v in config.items() if k in accepted and k != "self"}

    def derain(self, batch: torch.Tensor) -> torch.Tensor:
        """batch: float32 Bx3xHxW RGB in [0,1] -> float32 Bx3xHxW in [0,1] (last stage, clamped)."""
        if self.net is None:
            raise BadInputError(f"method {self.spec}: derain() called before load()")
        with torch.inference_mode():
            return self.net(batch.to(self.device)).clamp(0.0, 1.0)

    def network(self) -> nn.Module | None:
        return self.net if self.net is not None else self._build()


_HERE = Path(__file__).resolve().parent


class PReNet(RecurrentNetMethod):
    """PReNet (6 stages, ConvLSTM, 5 residual units)."""

    info = MethodInfo(
        name="prenet",
        display_name="PReNet",
        paper=_PAPER,
        year=2019,
        kind="learned",
        description="progressive recurrent network: 6 weight-shared stages, ConvLSTM, 5 residual units",
        code_url=CODE_URL,
        variants={
            "rain100h": official_variant("rain100h", "PReNet6"),
            "rain100l": official_variant("rain100l", "PReNet6"),
            "rain1400": official_variant("rain1400", "PReNet6"),
            "real": Variant(
                weights=(
                    WeightsFile(
                        "real_PReNet1.pth",
                        url=_raw_url("csdwren/PReNet", _COMMIT, "logs/real/PReNet1.pth"),
                        sha256="eba0c0ed941565abce9c61ceb8b36ff5e1532320c20efc11843f5f7fc810f7bb",
                        folder="prenet",
                        how_to_get=f"download logs/real/PReNet1.pth from {CODE_URL} and save it as real_PReNet1.pth",
                    ),
                ),
                description="official real-rain model (Generator_lstm: LSTM after the units, 4 stages, no residual)",
                trained_on="not documented by the authors (released for real rainy images)",
                note="different architecture from the synthetic-rain PReNet",
            ),
            "ours": Variant(
                description="PReNet trained by this project (`bench train`), shipped in the package",
                note="trained by this project",
                packaged=True,
            ),
        },
        default_variant="rain100h",
    )
    networks: ClassVar[NetworkFactories] = {"real": nets.PReNetReal, "*": nets.PReNet}
    shipped: ClassVar[dict[str, Path]] = {"ours": _HERE / "checkpoints" / "prenet_ours.pt"}


class PReNetR(RecurrentNetMethod):
    """PReNet_r: one residual unit applied 5 times."""

    info = MethodInfo(
        name="prenet_r",
        display_name="PReNet_r",
        paper=_PAPER,
        year=2019,
        kind="learned",
        description="PReNet with one recursive residual unit (5 applications)",
        code_url=CODE_URL,
        variants={d: official_variant(d, "PReNet6_r") for d in ("rain100h", "rain100l", "rain1400")},
        default_variant="rain100h",
    )
    networks: ClassVar[NetworkFactories] = {"*": nets.PReNetR}


class PRN(RecurrentNetMethod):
    """PRN: PReNet without the ConvLSTM."""

    info = MethodInfo(
        name="prn",
        display_name="PRN",
        paper=_PAPER,
        year=2019,
        kind="learned",
        description="progressive (non-recurrent) network: 6 weight-shared stages, 5 residual units",
        code_url=CODE_URL,
        variants={d: official_variant(d, "PRN6") for d in ("rain100h", "rain100l", "rain1400")},
        default_variant="rain100h",
    )
    networks: ClassVar[NetworkFactories] = {"*": nets.PRN}


class PRNR(RecurrentNetMethod):
    """PRN_r: PRN with one residual unit applied 5 times."""

    info = MethodInfo(
        name="prn_r",
        display_name="PRN_r",
        paper=_PAPER,
        year=2019,
        kind="learned",
        description="PRN with one recursive residual unit (5 applications)",
        code_url=CODE_URL,
        variants={d: official_variant(d, "PRN6_r") for d in ("rain100h", "rain100l", "rain1400")},
        default_variant="rain100h",
    )
    networks: ClassVar[NetworkFactories] = {"*": nets.PRNR}
