"""Task model ``segformer``: SegFormer (Xie et al., NeurIPS 2021) semantic segmenters through Hugging Face transformers.

Spec: ``segformer:<hub id>`` (default ``nvidia/segformer-b0-finetuned-cityscapes-1024-1024``) or
``segformer:<folder>``, a local folder written by ``save_pretrained`` (``config.json`` + weights, and ideally
the image processor's ``preprocessor_config.json``). A value that names an existing folder, or starts with
``/``, ``./``, ``../`` or ``~``, is a folder; anything else is a hub id.

Offline use: the hub is only contacted when downloads are allowed (neither ``HF_HUB_OFFLINE`` /
``TRANSFORMERS_OFFLINE`` nor ``BENCH_NO_DOWNLOAD`` is set) and the hub host answers a 3-second connection
probe; otherwise the model must already be in the local Hugging Face cache (``local_files_only``), and
:meth:`SegFormer.unavailable_reason` says at once what is missing and how to provide it, instead of the
library's 25 s of retries. To prepare a folder on a machine with network access::

    python -c "from transformers import SegformerForSemanticSegmentation as M, SegformerImageProcessor as P; \\
               i='nvidia/segformer-b0-finetuned-cityscapes-1024-1024'; \\
               M.from_pretrained(i).save_pretrained('segformer-b0-city'); P.from_pretrained(i).save_pretrained('segformer-b0-city')"

Label space: the model's ``config.id2label`` must name the 19 Cityscapes classes (any order; case, ``_`` and
``-`` ignored); an extra void class (void, ignore, unlabeled) maps to 255. Anything else is refused with the
mismatch named.

Preprocessing: the model's own image processor (``SegformerImageProcessor.from_pretrained``; for the NVIDIA
Cityscapes checkpoints: resize to its ``size``, bilinear, rescale 1/255, ImageNet mean/std), fed the image as
8-bit RGB (what it sees from a PNG or JPEG). Without a ``preprocessor_config.json`` the processor's defaults are
used (512x512, ImageNet mean/std). Post-processing as ``post_process_semantic_segmentation``: logits (1/4 of
the processed size) bilinearly upsampled to the image size, arg-max.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch

from bench.errors import BadInputError, UnavailableError
from bench.tasks.api import TaskModel, TaskModelInfo, Variant
from bench.tasks.label_spaces import label_space
from bench.tasks.models.espnet.plugin import labels_from_logits

DEFAULT_HUB_ID = "nvidia/segformer-b0-finetuned-cityscapes-1024-1024"

#: the 19 Cityscapes train ids 0..18, in order (label space ``cityscapes-19``, declared in bench/tasks/label_spaces.toml)
CITYSCAPES_19: tuple[str, ...] = label_space("cityscapes-19").names
VOID_NAMES = frozenset({"void", "ignore", "unlabeled", "unlabelled"})

_TRUE = ("1", "on", "yes", "true")
_PROBE: dict[str, bool] = {}


def _norm(name: str) -> str:
    return " ".join(str(name).lower().replace("_", " ").replace("-", " ").split())


def cityscapes_lookup(names: list[str] | tuple[str, ...], owner: str) -> np.ndarray:
    """Model class index -> Cityscapes train id (255 for a void class), from the model's class names.

    Raises BadInputError naming the missing and unexpected classes when they are not the 19 Cityscapes classes.
    """
    wanted = {n: i for i, n in enumerate(CITYSCAPES_19)}
    lookup = np.full(len(names), 255, dtype=np.int64)
    unexpected, seen = [], set()
    for idx, name in enumerate(names):
        key = _norm(name)
        if key in wanted and key not in seen:
            lookup[idx] = wanted[key]
            seen.add(key)
        elif key not in VOID_NAMES:
            unexpected.append(str(name))
    missing = [n for n in CITYSCAPES_19 if n not in seen]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if unexpected:
            shown = ", ".join(unexpected[:10]) + (f" and {len(unexpected) - 10} more" if len(unexpected) > 10 else "")
            parts.append(f"unexpected {shown}")
        raise BadInputError(f"{owner}: the model's {len(names)} classes are not the 19 Cityscapes classes "
                            f"({'; '.join(parts)}); label space cityscapes-19 needs a Cityscapes-trained model")
    return lookup


def _env_offline() -> str | None:
    """Which setting switches downloads off, or None."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "BENCH_NO_DOWNLOAD"):
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return f"{var}={os.environ[var]}"
    return None


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub host accepts a TCP connection (checked once per process)."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    if endpoint not in _PROBE:
        url = urlparse(endpoint)
        try:
            with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout):
                _PROBE[endpoint] = True
        except OSError:
            _PROBE[endpoint] = False
    return _PROBE[endpoint]


class SegFormer(TaskModel):
    """SegFormer from a hub id or a ``save_pretrained`` folder; Cityscapes-trained models only."""

    info = TaskModelInfo(
        name="segformer",
        display_name="SegFormer",
        task="segmentation",
        label_space="cityscapes-19",
        paper="Xie et al., SegFormer: Simple and Efficient Design for Semantic Segmentation with Transformers, NeurIPS 2021",
        year=2021,
        preprocessing=("the model's SegformerImageProcessor on 8-bit RGB (NVIDIA Cityscapes checkpoints: resize to the "
                       "configured size, /255, ImageNet mean/std); logits bilinearly upsampled to the image size, arg-max"),
        variants={DEFAULT_HUB_ID: Variant(description="SegFormer-B0 fine-tuned on Cityscapes at 1024x1024 (NVIDIA, hub)",
                                          trained_on="Cityscapes train (fine), 19 classes")},
        default_variant=DEFAULT_HUB_ID,
        description="hierarchical transformer encoder (Mix Transformer) with an all-MLP decoder; any hub id or local folder",
        code_url="https://huggingface.co/docs/transformers/model_doc/segformer",
        licence="model-specific (NVIDIA SegFormer checkpoints: NVIDIA Source Code License, non-commercial)",
        open_variants=True,
    )

    def __init__(self, variant: str | None = None) -> None:
        super().__init__(variant)
        self.model = None
        self.processor = None
        self.lookup: np.ndarray | None = None
        self.preprocessing_used = ""

    # where the model comes from --------------------------------------------------------------------
    @property
    def folder(self) -> Path | None:
        """The local folder named by the variant, or None for a hub id."""
        path = Path(self.variant).expanduser()
        if path.exists() or self.variant.startswith(("/", "./", "../", "~", ".\\", "..\\")):
            return path
        return None

    def fingerprint_files(self) -> list[Path]:
        """A local folder's config and weights (a hub id is keyed by its name)."""
        folder = self.folder
        if folder is None or not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.suffix in (".json", ".safetensors", ".bin"))

    def _offline_why(self) -> str | None:
        """Why the hub will not be contacted (None: it will be)."""
        env = _env_offline()
        if env:
            return f"downloads are off ({env})"
        if not _hub_reachable():
            return f"the hub ({os.environ.get('HF_ENDPOINT', 'https://huggingface.co')}) cannot be reached"
        return None

    def _how_to_provide(self) -> str:
        return (f"run once with network access and downloads on (the model is then cached in the Hugging Face cache), or on a "
                f"machine with network save it with SegformerForSemanticSegmentation.from_pretrained('{self.variant}')"
                f".save_pretrained(DIR) and SegformerImageProcessor.from_pretrained('{self.variant}').save_pretrained(DIR), "
                f"copy DIR here and use segformer:DIR")

    def _cached(self, filename: str) -> bool:
        from huggingface_hub import try_to_load_from_cache

        try:
            return isinstance(try_to_load_from_cache(self.variant, filename), str)
        except Exception:  # an id the hub library rejects: not cached
            return False

    def _local_config(self):
        """The model config when readable without network, else None."""
        from transformers import AutoConfig

        try:
            source = str(self.folder) if self.folder is not None else self.variant
            return AutoConfig.from_pretrained(source, local_files_only=True)
        except Exception:
            return None

    def unavailable_reason(self) -> str | None:
        try:
            import transformers  # noqa: F401
        except ImportError:
            return (f"{self.owner}: the transformers package is not installed; "
                    f"`pip install 'transformers>=4.40'` (SegFormer runs through transformers)")
        folder = self.folder
        if folder is not None:
            if not folder.is_dir():
                return (f"{self.owner}: folder {self.variant} ({folder.resolve()}) not found; "
                        f"give a folder written by save_pretrained, or a hub id")
            if not (folder / "config.json").is_file():
                return (f"{self.owner}: {folder} has no config.json, so it is not a save_pretrained folder; "
                        f"write it with model.save_pretrained({str(folder)!r})")
            if not any((folder / n).is_file() for n in ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")):
                return f"{self.owner}: {folder} has config.json but no weights (model.safetensors or pytorch_model.bin)"
        else:
            why = self._offline_why()
            if why is not None and not (self._cached("config.json")
                                        and (self._cached("model.safetensors") or self._cached("pytorch_model.bin"))):
                return (f"{self.owner}: hub model {self.variant!r} is not in the local Hugging Face cache and {why}; "
                        f"{self._how_to_provide()}")
        config = self._local_config()
        if config is not None:
            try:
                self._lookup_from(config)
            except BadInputError as exc:
                return str(exc)
        return None

    # loading and prediction ------------------------------------------------------------------------
    def _lookup_from(self, config) -> np.ndarray:
        if getattr(config, "model_type", "segformer") != "segformer":
            raise BadInputError(f"{self.owner}: {self.variant} is a {config.model_type!r} model, not SegFormer")
        id2label = {int(k): v for k, v in (config.id2label or {}).items()}
        names = [id2label.get(i, f"LABEL_{i}") for i in range(config.num_labels)]
        return cityscapes_lookup(names, self.owner)

    def load(self, device: torch.device) -> None:
        self.device = device
        reason = self.unavailable_reason()
        if reason is not None:
            raise UnavailableError(reason)
        from transformers import SegformerForSemanticSegmentation, SegformerImageProcessor

        folder = self.folder
        source = str(folder) if folder is not None else self.variant
        local_only = folder is not None or self._offline_why() is not None
        try:
            model = SegformerForSemanticSegmentation.from_pretrained(source, local_files_only=local_only)
        except OSError as exc:
            raise UnavailableError(f"{self.owner}: cannot load the model from {source} ({' '.join(str(exc).split())[:300]}); "
                                   f"{self._how_to_provide()}") from exc
        except Exception as exc:
            raise BadInputError(f"{self.owner}: {source} is not a loadable SegFormer model "
                                f"({type(exc).__name__}: {' '.join(str(exc).split())[:300]})") from exc
        self.lookup = self._lookup_from(model.config)
        try:
            self.processor = SegformerImageProcessor.from_pretrained(source, local_files_only=local_only)
            origin = "its preprocessor_config.json"
        except OSError:
            self.processor = SegformerImageProcessor()
            origin = "SegformerImageProcessor defaults (no preprocessor_config.json)"
        p = self.processor
        self.preprocessing_used = (f"{origin}: resize {dict(p.size) if p.do_resize else 'none'}, rescale {p.do_rescale}, "
                                   f"mean {list(p.image_mean)}, std {list(p.image_std)}")
        self.model = model.to(device).eval()

    def predict(self, image: np.ndarray) -> np.ndarray:
        """float32 HxWx3 RGB in [0,1] -> int64 HxW Cityscapes train ids (255 for a void class)."""
        if self.model is None or self.processor is None or self.lookup is None:
            raise BadInputError(f"{self.owner}: predict() called before load()")
        if image.ndim != 3 or image.shape[2] != 3:
            raise BadInputError(f"{self.owner}: expected an HxWx3 RGB image, got shape {tuple(image.shape)}")
        rgb8 = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        pixels = self.processor(images=rgb8, return_tensors="pt")["pixel_values"].to(self.device)
        with torch.inference_mode():
            logits = self.model(pixel_values=pixels).logits[0]
            ids = labels_from_logits(logits, image.shape[:2])
        return self.lookup[ids]

    def network(self) -> torch.nn.Module | None:
        return self.model
