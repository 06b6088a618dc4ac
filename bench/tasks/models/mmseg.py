"""Task model ``mmseg``: any MMSegmentation 1.x model (config + checkpoint) through ``mmseg.apis``.

Spec: ``mmseg:CONFIG.py@CHECKPOINT.pth`` (paths absolute or relative to the working directory). ``@CHECKPOINT``
may be left out: the checkpoint is then ``CONFIG`` with the suffix ``.pth``, next to the config
(``mmseg:configs/segformer_b0_city.py`` reads ``configs/segformer_b0_city.pth``). The split is at the first
``.py@``, so a checkpoint path may itself contain ``@``.

What happens: ``mmseg.apis.init_model(config, checkpoint=None, device)`` builds the network from the config
(backbone ``init_cfg`` and ``pretrained`` cleared, so nothing is downloaded), the checkpoint is read with
``torch.load(weights_only=True)`` (tensors and plain data only; mmengine's own loader would unpickle arbitrary
objects) and loaded with ``strict=True``, and ``mmseg.apis.inference_model`` runs the config's
``test_pipeline`` and ``data_preprocessor`` (resize, mean/std, BGR->RGB as the config says) on the image given
as 8-bit BGR, as ``mmcv.imread`` would give it; mmseg returns ``pred_sem_seg`` already resized to the image
(logits bilinearly upsampled, arg-max).

Label space: the class names of the checkpoint's ``meta.dataset_meta.classes`` (mmseg 1.x) or ``meta.CLASSES``
(0.x), else the ``METAINFO`` of the config's test dataset type, must be the 19 Cityscapes classes (any order;
a void class maps to 255); otherwise the model is refused with the mismatch named.

Installation. mmsegmentation 1.2.2 needs mmcv >= 2.0.0rc4, < 2.2.0 with its compiled ops; mmcv 2.1.0 has no wheel
for torch 2.14, and its sdist builds only with the C++ standard raised to C++20 and, with setuptools >= 81 (no
``pkg_resources``), with setup.py's one ``pkg_resources`` import replaced. These exact commands worked in the
project venv (torch 2.14.1, setuptools 84, gcc 12, no visible GPU, so the CPU ops only) on 2026-12-03; the
build took 2,443 s (41 min) at ``nice -n 19`` with ``MAX_JOBS=2`` on 2 cores shared with other jobs (load
average 9-11; about 21 min on an idle machine)::

    pip install --no-deps mmengine==0.10.7 termcolor prettytable   # mmengine's other needs (addict, yapf, pyyaml,
                                                                  # rich, opencv) are already there; --no-deps keeps
                                                                  # it from adding opencv-python beside -headless
    echo 'setuptools<81' > /tmp/c.txt                             # the sdist's metadata step imports pkg_resources
    PIP_CONSTRAINT=/tmp/c.txt pip download --no-deps --no-binary :all: mmcv==2.1.0 -d /tmp/mmcv
    tar xzf /tmp/mmcv/mmcv-2.1.0.tar.gz -C /tmp/mmcv && cd /tmp/mmcv/mmcv-2.1.0
    sed -i '5s/.*/from importlib.metadata import PackageNotFoundError as DistributionNotFound, distribution as get_distribution/' setup.py
    sed -i '5a from packaging.version import parse as parse_version' setup.py
    sed -i 's/c++14/c++20/g; s/c++17/c++20/g' setup.py
    MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=2 nice -n 19 pip install --no-build-isolation --no-deps -v .
    pip install --no-deps mmsegmentation==1.2.2

(``PIP_CONSTRAINT`` replaces a constraint file set in pip's configuration; on a machine that has one, list both,
separated by a space.) Check: ``python -c "import mmseg.apis, mmcv.ops"``. With a CUDA toolkit and a visible GPU,
mmcv's setup.py builds the CUDA ops as well (not tried here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.errors import BadInputError, UnavailableError
from bench.methods.checkpoints import read_torch_file, unwrap_state_dict
from bench.tasks.api import TaskModel, TaskModelInfo, WeightsFile
from bench.tasks.models.segformer import cityscapes_lookup

INSTALL_STEPS = (
    "pip install --no-deps mmengine==0.10.7 termcolor prettytable; build mmcv 2.1.0 from its sdist "
    "(PIP_CONSTRAINT with setuptools<81: pip download --no-deps --no-binary :all: mmcv==2.1.0; unpack; in setup.py replace the "
    "pkg_resources import by importlib.metadata/packaging and -std=c++14/c++17 by -std=c++20; "
    "MMCV_WITH_OPS=1 MAX_JOBS=2 pip install --no-build-isolation --no-deps . , 20-40 min on 2 cores); "
    "pip install --no-deps mmsegmentation==1.2.2 (exact commands in bench/tasks/models/mmseg.py)"
)


#: the default "variant": a reminder of the syntax (``mmseg`` alone names no model)
PLACEHOLDER = "CONFIG.py"


def split_spec(variant: str) -> tuple[Path, Path]:
    """``CONFIG.py[@CHECKPOINT]`` -> (config path, checkpoint path)."""
    config, checkpoint = variant, ""
    at = variant.find(".py@")
    if at > 0:
        config, checkpoint = variant[:at + 3], variant[at + 4:]
    config_path = Path(config).expanduser()
    checkpoint_path = Path(checkpoint).expanduser() if checkpoint else config_path.with_suffix(".pth")
    return config_path, checkpoint_path


def mmseg_import_error() -> str | None:
    """None when ``mmseg.apis`` imports, else the error in one line."""
    try:
        import mmseg.apis  # noqa: F401
    except Exception as exc:  # ImportError, or mmseg's own AssertionError on an mmcv version outside its range
        return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    return None


class MMSeg(TaskModel):
    """An MMSegmentation config and checkpoint (Cityscapes-trained)."""

    info = TaskModelInfo(
        name="mmseg",
        display_name="MMSeg",
        task="segmentation",
        label_space="cityscapes-19",
        paper="MMSegmentation Contributors, MMSegmentation: OpenMMLab Semantic Segmentation Toolbox and Benchmark, 2020",
        year=2020,
        preprocessing="the config's test_pipeline and data_preprocessor on 8-bit BGR (mmseg.apis.inference_model); "
                      "prediction at the image size as mmseg returns it",
        variants={},
        default_variant=PLACEHOLDER,
        description="any mmsegmentation 1.x model: mmseg:CONFIG.py (checkpoint CONFIG.pth beside it) or mmseg:CONFIG.py@CHECKPOINT.pth",
        code_url="https://github.com/open-mmlab/mmsegmentation",
        licence="Apache-2.0 (toolbox); the checkpoint's own terms",
        open_variants=True,
    )

    def __init__(self, variant: str | None = None) -> None:
        super().__init__(variant)
        self.model: Any = None
        self.lookup: np.ndarray | None = None
        self.classes: tuple[str, ...] = ()

    def weights_for_variant(self, variant: str) -> tuple[WeightsFile, ...]:
        return ()  # the checkpoint is a user path named in the spec, read in load()

    @property
    def paths(self) -> tuple[Path, Path]:
        return split_spec(self.variant)

    def fingerprint_files(self) -> list[Path]:
        return list(self.paths)

    def unavailable_reason(self) -> str | None:
        if self.variant == PLACEHOLDER:
            return (f"{self.owner}: name a config: mmseg:CONFIG.py (checkpoint CONFIG.pth beside it) or "
                    f"mmseg:CONFIG.py@CHECKPOINT.pth (see bench/tasks/models/mmseg.py)")
        error = mmseg_import_error()
        if error is not None:
            return f"{self.owner}: mmsegmentation cannot be imported ({error}); to install: {INSTALL_STEPS}"
        config, checkpoint = self.paths
        if config.suffix != ".py" or not config.is_file():
            return (f"{self.owner}: config {config} not found (expected an mmseg config .py file; "
                    f"spec mmseg:CONFIG.py or mmseg:CONFIG.py@CHECKPOINT.pth)")
        if not checkpoint.is_file():
            return (f"{self.owner}: checkpoint {checkpoint} not found; put it next to the config under that name "
                    f"or name it: mmseg:{config}@CHECKPOINT.pth")
        return None

    def _classes(self, meta: dict, cfg: Any) -> tuple[str, ...]:
        dataset_meta = meta.get("dataset_meta") if isinstance(meta.get("dataset_meta"), dict) else {}
        classes = dataset_meta.get("classes") or meta.get("CLASSES")
        if not classes:
            try:
                from mmseg.registry import DATASETS

                dataset = cfg.test_dataloader.dataset
                classes = (dataset.get("metainfo") or {}).get("classes") or DATASETS.get(dataset.type).METAINFO["classes"]
            except Exception:
                classes = None
        if not classes:
            raise BadInputError(f"{self.owner}: neither the checkpoint's meta (dataset_meta.classes or CLASSES) nor the "
                                f"config's test dataset names the classes; cannot tell its label space")
        return tuple(str(c) for c in classes)

    def load(self, device: torch.device) -> None:
        self.device = device
        reason = self.unavailable_reason()
        if reason is not None:
            raise UnavailableError(reason)
        from mmseg.apis import init_model

        config, checkpoint = self.paths
        try:
            model = init_model(str(config), checkpoint=None, device=str(device))
        except Exception as exc:
            raise BadInputError(f"{self.owner}: mmseg cannot build a model from {config} "
                                f"({type(exc).__name__}: {' '.join(str(exc).split())[:300]})") from exc
        fix = "give an mmseg checkpoint holding tensors and plain metadata (e.g. published with tools/misc/publish_model.py)"
        raw = read_torch_file(checkpoint, self.owner, fix)
        meta = raw.get("meta") if isinstance(raw, dict) and isinstance(raw.get("meta"), dict) else {}
        state = unwrap_state_dict(raw, checkpoint, self.owner, fix)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise BadInputError(f"{self.owner}: checkpoint {checkpoint} does not match the model of {config}: "
                                f"{' '.join(str(exc).split())[:400]}") from exc
        self.classes = self._classes(meta, model.cfg)
        self.lookup = cityscapes_lookup(list(self.classes), self.owner)
        model.dataset_meta = {"classes": self.classes, "palette": (dataset_meta_palette(meta, len(self.classes)))}
        self.model = model.to(device).eval()

    def predict(self, image: np.ndarray) -> np.ndarray:
        """float32 HxWx3 RGB in [0,1] -> int64 HxW Cityscapes train ids (255 for a void class)."""
        if self.model is None or self.lookup is None:
            raise BadInputError(f"{self.owner}: predict() called before load()")
        if image.ndim != 3 or image.shape[2] != 3:
            raise BadInputError(f"{self.owner}: expected an HxWx3 RGB image, got shape {tuple(image.shape)}")
        from mmseg.apis import inference_model

        bgr8 = np.ascontiguousarray((np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)[..., ::-1])
        result = inference_model(self.model, bgr8)
        ids = result.pred_sem_seg.data[0].to(torch.int64).cpu().numpy()
        if ids.shape != image.shape[:2]:
            raise BadInputError(f"{self.owner}: mmseg returned a {ids.shape} map for a {image.shape[:2]} image")
        return self.lookup[ids]

    def network(self) -> torch.nn.Module | None:
        return self.model


def dataset_meta_palette(meta: dict, n: int) -> list:
    dataset_meta = meta.get("dataset_meta") if isinstance(meta.get("dataset_meta"), dict) else {}
    palette = dataset_meta.get("palette") or meta.get("PALETTE")
    return list(palette) if palette and len(palette) == n else [[(37 * i) % 256, (91 * i) % 256, (173 * i) % 256] for i in range(n)]
