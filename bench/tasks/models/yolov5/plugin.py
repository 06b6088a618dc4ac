"""Task model ``yolov5``: the original YOLOv5 (v7.0 release) COCO detectors, the default detection model.

Weights: the release assets ``yolov5{n,s,m,l,x}.pt`` of github.com/ultralytics/yolov5 (v7.0), pickled model
objects (``{"model": models.yolo.Model, ...}``, fp16). They are read with :mod:`bench.tasks.models.safe_pickle`
(nothing of the file is imported or run), the network is rebuilt from the ``yaml`` dict stored in the checkpoint
(:class:`~bench.tasks.models.yolov5.network.YOLOv5Net`, Ultralytics' blocks + YOLOv5's anchor head) and the weights
are loaded as float32 with ``strict=True``; every layer's class is also checked against the pickled model's.

Evaluation settings (YOLOv5 ``val.py``: conf 0.001, NMS IoU 0.6, max 300 detections, class-aware multi-label NMS)
with the letterbox of YOLOv5's inference (``detect.py`` / ``LoadImages``: long side to 640, bilinear, padded to a
multiple of 32 with grey 114, split evenly) on the image as 8-bit RGB /255; boxes mapped back with ``scale_boxes``.
``val.py`` itself letterboxes rectangular batches to a fixed shape with half a stride of extra padding and shrinks
with INTER_AREA; a single image here follows ``detect.py``.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.errors import BadInputError
from bench.tasks.api import Detections, TaskModel, TaskModelInfo, Variant, WeightsFile
from bench.tasks.models import safe_pickle as sp
from bench.tasks.models.ultralytics_yolo import (
    PREPROCESSING,
    check_coco_names,
    detections_from,
    letterbox,
    multi_label_nms,
    to_input,
    to_uint8,
    xywh_to_xyxy,
)
from bench.tasks.models.yolov5.network import YOLOv5Net

CODE_URL = "https://github.com/ultralytics/yolov5"
RELEASE_URL = "https://github.com/ultralytics/yolov5/releases/download/v7.0"
YOLOV5N_SHA256 = "4f180cf23ba0717ada0badd6c685026d73d48f184d00fc159c2641284b2ac0a3"
#: COCO val2017 mAP50-95 / parameters as listed in the v7.0 README
_SIZES = {"n": ("YOLOv5n", "28.0", "1.9 M"), "s": ("YOLOv5s", "37.4", "7.2 M"), "m": ("YOLOv5m", "45.4", "21.2 M"),
          "l": ("YOLOv5l", "49.0", "46.5 M"), "x": ("YOLOv5x", "50.7", "86.7 M")}
#: the classes a YOLOv5 checkpoint may pickle as its model
MODEL_CLASSES = ("models.yolo.Model", "models.yolo.DetectionModel")


def _variant(k: str) -> Variant:
    title, map_, params = _SIZES[k]
    return Variant(
        weights=(WeightsFile(f"yolov5{k}.pt", url=f"{RELEASE_URL}/yolov5{k}.pt",
                             sha256=YOLOV5N_SHA256 if k == "n" else None, folder="yolov5"),),
        description=f"{title}, {params} parameters, COCO val2017 mAP50-95 {map_} (official, 640)",
        trained_on="COCO train2017, 80 classes, 640x640",
    )


class YOLOv5(TaskModel):
    """YOLOv5 n/s/m/l/x (v7.0 release), anchor-based, 80 COCO classes."""

    info = TaskModelInfo(
        name="yolov5",
        display_name="YOLOv5",
        task="detection",
        label_space="coco-80",
        paper="Jocher et al., YOLOv5 v7.0 (Ultralytics, 2022)",
        year=2022,
        preprocessing=PREPROCESSING,
        variants={f"yolov5{k}.pt": _variant(k) for k in "nsmlx"},
        default_variant="yolov5n.pt",
        description="anchor-based one-stage detector (CSP backbone with C3 blocks, SPPF, PANet neck, 3 levels, "
                    "strides 8/16/32), read from the official pickled checkpoints without running their code",
        code_url=CODE_URL,
        licence="AGPL-3.0",
    )

    net: YOLOv5Net | None = None

    def load(self, device: torch.device) -> None:
        """Rebuild the network from the checkpoint's yaml and load its weights (float32, strict)."""
        self.device = device
        path = self.weights_path(self.variant)
        fix = f"delete it and fetch the official file again ({RELEASE_URL}/{self.variant})"
        ckpt = sp.load_checkpoint(path, self.owner, fix)
        where = f"{self.owner}: checkpoint {path}"
        record = None
        if isinstance(ckpt, dict):
            record = ckpt.get("ema") if sp.is_inert(ckpt.get("ema")) else ckpt.get("model")
        if not sp.is_inert(record):
            raise BadInputError(f"{where} holds no pickled model under 'model'; {fix}")
        if sp.inert_ref(record) not in MODEL_CLASSES:
            hint = " (an Ultralytics checkpoint: use yolo:<file>)" if sp.inert_ref(record).startswith("ultralytics.") else ""
            raise BadInputError(f"{where} holds a {sp.inert_ref(record)}, not a YOLOv5 detection model{hint}; {fix}")
        cfg = sp.inert_attr(record, "yaml")
        if not isinstance(cfg, dict):
            raise BadInputError(f"{where}: the model has no yaml dict to rebuild it from; {fix}")
        cfg = sp.require_plain(cfg, f"{where}: the model yaml")
        check_coco_names(sp.inert_attr(record, "names"), int(cfg.get("nc", 0) or 0), where)
        try:
            net = YOLOv5Net(cfg)
        except BadInputError as exc:
            raise BadInputError(f"{where}: {exc}; {fix}") from exc
        except Exception as exc:  # a yaml with arguments the blocks do not accept
            raise BadInputError(f"{where}: cannot build YOLOv5 from its yaml ({type(exc).__name__}: {_short(exc)}); "
                                f"{fix}") from exc
        try:
            state = sp.to_float32(sp.module_state_dict(record))
            check_layers(net, record)
            net.load_state_dict(state, strict=True)
        except BadInputError as exc:
            raise BadInputError(f"{where}: {exc}; {fix}") from exc
        except RuntimeError as exc:
            raise BadInputError(f"{where} does not match the network built from its yaml: {_short(exc)}; {fix}") from exc
        stride = sp.inert_attr(record, "stride")
        if isinstance(stride, torch.Tensor) and not torch.equal(stride.float(), net.stride.float()):
            raise BadInputError(f"{where}: strides {stride.tolist()} differ from the rebuilt network's "
                                f"{net.stride.tolist()}; {fix}")
        self.net = net.to(device).eval()

    def predict(self, image: np.ndarray) -> Detections:
        """float32 HxWx3 RGB in [0,1] -> boxes (xyxy pixels of ``image``), scores, COCO class ids 0..79."""
        if self.net is None:
            raise BadInputError(f"{self.owner}: predict() called before load()")
        rgb = to_uint8(image, self.owner)
        padded = letterbox(rgb)
        with torch.inference_mode():
            pred = self.net(to_input(padded, self.device))[0].float()  # N x (5 + nc)
            pred = pred[pred[:, 4] > 0.001]  # objectness candidates (YOLOv5: obj > conf_thres)
            scores = pred[:, 5:] * pred[:, 4:5]  # conf = obj * cls
            boxes, scores, classes = multi_label_nms(xywh_to_xyxy(pred[:, :4]), scores)
            return detections_from(boxes, scores, classes, padded.shape[:2], rgb.shape[:2])

    def network(self) -> torch.nn.Module | None:
        return self.net


def check_layers(net: torch.nn.Module, record) -> None:
    """Every torch.nn layer the pickled model has (Conv2d, BatchNorm2d, SiLU, MaxPool2d, Upsample ...) must be the
    same class at the same place in the rebuilt network: catches a block whose activation differs (a strict
    state-dict load cannot, as activations have no weights). Raises BadInputError naming the first mismatch."""
    built = dict(net.named_modules(remove_duplicate=False))
    for name, child in _named_records(record):
        ref = sp.inert_ref(child)
        if not ref.startswith("torch.nn.modules."):
            continue
        mine = built.get(name)
        if mine is None or type(mine).__name__ != ref.rpartition(".")[2]:
            have = "nothing" if mine is None else type(mine).__name__
            raise BadInputError(f"layer {name} is a {ref.rpartition('.')[2]} in the checkpoint but {have} in the network "
                                f"built from its yaml")
        if ref.endswith("BatchNorm2d"):
            eps = sp.inert_attr(child, "eps")
            if isinstance(eps, float) and abs(eps - mine.eps) > 1e-12:
                mine.eps = eps  # the checkpoint's own epsilon wins


def _named_records(record, prefix: str = ""):
    modules = sp.inert_attr(record, "_modules") or {}
    for name, child in modules.items():
        if sp.is_inert(child):
            full = f"{prefix}{name}"
            yield full, child
            yield from _named_records(child, full + ".")


def _short(exc: Exception, limit: int = 400) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + " ..."
