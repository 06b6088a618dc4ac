"""Task model ``yolo``: Ultralytics-format detectors (YOLOv8, YOLO11, YOLO12, YOLO26, YOLOv5u, YOLOv9, YOLOv10).

Spec: ``yolo:<weights file>``. An official asset name (``yolo:yolov8n.pt``, ``yolo:yolo11s.pt``, ``yolo:yolov5nu.pt``)
is looked for in ``<weights_dir>/yolo/`` and downloaded from the Ultralytics assets release the installed
ultralytics 8.4 uses (``https://github.com/ultralytics/assets/releases/download/v8.4.0/<file>``) when downloads
are allowed; any other name must already be in ``<weights_dir>/yolo/``; a path (``/abs/best.pt``, ``~/best.pt``,
``runs/best.pt``) is used where it is, never downloaded.

The checkpoint is untrusted input: it is read with :mod:`bench.tasks.models.safe_pickle` (no pickled code runs, no
class of the file is imported), its stored ``yaml`` is checked (every layer must be a torch / Ultralytics
``nn.Module`` class, the ``activation`` a torch.nn class with literal arguments, since Ultralytics' ``parse_model``
would ``eval`` it), ``ultralytics.nn.tasks.DetectionModel(cfg=yaml)`` is built from it and the weights (the
``ema`` model when present, else ``model``, as Ultralytics loads them) are loaded with ``strict=True``. The model
must have the 80 COCO classes in the standard order (label space ``coco-80``).

Inference (shared with ``yolov5``): the image as 8-bit RGB, letterboxed as Ultralytics' and YOLOv5's predictors do
(long side to 640, aspect kept, bilinear ``cv2.resize``, padded to a multiple of 32 with grey 114, split evenly),
/255; outputs (B, 4 + nc, N) -> every (box, class) pair with score > 0.001, class-aware NMS at IoU 0.6
(``torchvision.ops.batched_nms``), at most 300 boxes. A head saved in end-to-end mode (the one-to-one branch of
YOLO26 / YOLOv10 with ``_end2end`` set: B x 300 x 6, no NMS) is only filtered by the score, as Ultralytics'
predictor keeps the saved mode. Boxes are mapped back to the image (``scale_boxes``) and clipped. Note: Ultralytics'
own ``val`` uses IoU 0.7 and rectangular batches with half a stride of extra padding; here every detector shares the
evaluation settings of YOLOv5's ``val.py`` (conf 0.001, IoU 0.6, max 300) and the predictor's letterbox.

Ultralytics is imported with ``YOLO_CONFIG_DIR`` defaulting to ``<project>/.cache/ultralytics`` and ``YOLO_OFFLINE``
to 1 (it never needs the network here), and its ``sync`` setting turned off.
"""

from __future__ import annotations

import ast
import copy
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.errors import BadInputError
from bench.tasks.api import Detections, TaskModel, TaskModelInfo, Variant, WeightsFile
from bench.tasks.models import safe_pickle as sp

ASSETS_RELEASE = "v8.4.0"  # ultralytics 8.4 utils/downloads.py attempt_download_asset(release="v8.4.0")
ASSETS_URL = f"https://github.com/ultralytics/assets/releases/download/{ASSETS_RELEASE}"
#: official COCO detection assets (the detection subset of ultralytics.utils.downloads.GITHUB_ASSETS_NAMES)
OFFICIAL_DETECTORS = frozenset(
    [f"yolov8{k}.pt" for k in "nsmlx"] + [f"yolo11{k}.pt" for k in "nsmlx"] + [f"yolo12{k}.pt" for k in "nsmlx"]
    + [f"yolo26{k}.pt" for k in "nsmlx"] + [f"yolov5{k}{r}u.pt" for k in "nsmlx" for r in ("", "6")]
    + ["yolov3u.pt", "yolov3-sppu.pt", "yolov3-tinyu.pt"] + [f"yolov9{k}.pt" for k in "tsmce"]
    + [f"yolov10{k}.pt" for k in "nsmblx"])

#: evaluation settings (YOLOv5 val.py defaults), shared by ``yolov5`` and ``yolo``
IMAGE_SIZE = 640
STRIDE = 32
PAD_VALUE = 114
CONF_THRESHOLD = 0.001
IOU_THRESHOLD = 0.6
MAX_DET = 300
MAX_NMS = 30000  # boxes into NMS at most (YOLOv5 / Ultralytics max_nms)
PREPROCESSING = ("RGB /255, letterbox to 640 (grey 114, stride-32 padding), conf 0.001, NMS IoU 0.6, max 300")


# ultralytics, offline and quiet ----------------------------------------------------------------------------------
def prepare_ultralytics() -> None:
    """Make importing ultralytics side-effect free here: settings under the project, offline, no sync."""
    from bench.config import PROJECT_ROOT

    os.environ.setdefault("YOLO_CONFIG_DIR", str(PROJECT_ROOT / ".cache" / "ultralytics"))
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    from ultralytics.utils import SETTINGS

    if SETTINGS.get("sync"):
        SETTINGS.update(sync=False)


# shared inference steps ------------------------------------------------------------------------------------------
def to_uint8(image: np.ndarray, owner: str) -> np.ndarray:
    """float HxWx3 RGB in [0,1] -> uint8 HxWx3 RGB (what the official pipelines read from a file)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise BadInputError(f"{owner}: expected an HxWx3 RGB image, got shape {tuple(image.shape)}")
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    return np.clip(np.rint(image.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)


def letterbox(image: np.ndarray, size: int = IMAGE_SIZE, stride: int = STRIDE, value: int = PAD_VALUE) -> np.ndarray:
    """YOLOv5 / Ultralytics letterbox with ``auto=True``: scale the long side to ``size`` (aspect kept, up or down,
    ``cv2.INTER_LINEAR``), then pad each side to a multiple of ``stride`` with ``value``, split evenly."""
    import cv2

    h, w = image.shape[:2]
    r = min(size / h, size / w)
    new_w, new_h = max(round(w * r), 1), max(round(h * r), 1)  # at least one pixel (as Ultralytics)
    dw, dh = ((size - new_w) % stride) / 2, ((size - new_h) % stride) / 2
    if (w, h) != (new_w, new_h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    return cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(value, value, value))


def to_input(padded: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 HxWx3 RGB -> float32 1x3xHxW in [0,1]."""
    x = torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1))).to(device)
    return (x.float() / 255.0)[None]


def scale_boxes(boxes: torch.Tensor, input_hw: tuple[int, int], image_hw: tuple[int, int]) -> torch.Tensor:
    """xyxy boxes on the letterboxed input -> the original image's pixels, clipped (YOLOv5 ``scale_boxes``)."""
    gain = min(input_hw[0] / image_hw[0], input_hw[1] / image_hw[1])
    pad_x, pad_y = (input_hw[1] - image_hw[1] * gain) / 2, (input_hw[0] - image_hw[0] * gain) / 2
    boxes = boxes.clone()
    boxes[:, [0, 2]] -= pad_x
    boxes[:, [1, 3]] -= pad_y
    boxes /= gain
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clamp(0, image_hw[1])
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clamp(0, image_hw[0])
    return boxes


def xywh_to_xyxy(xywh: torch.Tensor) -> torch.Tensor:
    xy, wh = xywh[:, :2], xywh[:, 2:4] / 2
    return torch.cat((xy - wh, xy + wh), 1)


def multi_label_nms(boxes: torch.Tensor, scores: torch.Tensor, conf: float = CONF_THRESHOLD, iou: float = IOU_THRESHOLD,
                    max_det: int = MAX_DET) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Class-aware NMS as YOLOv5's ``non_max_suppression(multi_label=True)`` in val.py: every (box, class) pair
    scoring above ``conf`` is a candidate, the ``MAX_NMS`` best enter NMS per class at ``iou``, the ``max_det`` best
    survivors are kept. boxes: N x 4 xyxy; scores: N x nc. Returns (boxes K x 4, scores K, classes K), best first."""
    from torchvision.ops import batched_nms

    multi = scores.shape[1] > 1
    if multi:
        i, j = (scores > conf).nonzero(as_tuple=False).T
        cand_scores = scores[i, j]
    else:
        cand_scores, j = scores.max(1)
        i = torch.arange(len(scores), device=scores.device)
        keep = cand_scores > conf
        i, j, cand_scores = i[keep], j[keep], cand_scores[keep]
    order = cand_scores.argsort(descending=True)[:MAX_NMS]
    i, j, cand_scores = i[order], j[order], cand_scores[order]
    cand_boxes = boxes[i].float()
    keep = batched_nms(cand_boxes, cand_scores.float(), j, iou)[:max_det]
    return cand_boxes[keep], cand_scores[keep], j[keep]


def detections_from(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, input_hw: tuple[int, int],
                    image_hw: tuple[int, int]) -> Detections:
    boxes = scale_boxes(boxes.float(), input_hw, image_hw)
    return Detections(boxes.cpu().numpy(), scores.float().cpu().numpy(), classes.cpu().numpy())


# checking what a checkpoint says ---------------------------------------------------------------------------------
def parse_activation(spec: Any) -> torch.nn.Module:
    """A yaml ``activation`` (``nn.SiLU()``, ``torch.nn.LeakyReLU(0.1)``) as a module without ``eval``: a torch.nn
    activation class called with literal arguments; anything else is BadInputError."""
    try:
        call = ast.parse(str(spec).strip(), mode="eval").body
        assert isinstance(call, ast.Call)
        names, node = [], call.func
        while isinstance(node, ast.Attribute):
            names.append(node.attr)
            node = node.value
        assert isinstance(node, ast.Name)
        names.append(node.id)
        assert names[1:] in (["nn"], ["nn", "torch"])
        cls = getattr(torch.nn, names[0])
        assert isinstance(cls, type) and issubclass(cls, torch.nn.Module)
        assert cls.__module__ == "torch.nn.modules.activation"
        args = [ast.literal_eval(a) for a in call.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
        return cls(*args, **kwargs)
    except Exception as exc:
        raise BadInputError(f"activation {spec!r} in the model yaml is not a torch.nn activation with literal "
                            f"arguments") from exc


def check_coco_names(names: Any, nc: int, where: str) -> None:
    """The model's classes must be COCO's 80 in the standard order; default names ("0", "1", ...) are accepted."""
    from bench.tasks.label_spaces import label_space

    coco = label_space("coco-80").names
    if nc != len(coco):
        raise BadInputError(f"{where} has {nc} classes; the detection models here predict the 80 COCO classes "
                            f"(label space coco-80)")
    if isinstance(names, dict):
        names = [names.get(i, names.get(str(i))) for i in range(nc)]
    if not isinstance(names, (list, tuple)) or len(names) != nc:
        return  # no usable names: trust nc
    if all(str(n) == str(i) for i, n in enumerate(names)):
        return  # a model built from a yaml without names
    wrong = [f"{i}: {n!r} (COCO: {c!r})" for i, (n, c) in enumerate(zip(names, coco, strict=True))
             if str(n).strip().lower() != c]
    if wrong:
        shown = "; ".join(wrong[:5]) + (f"; and {len(wrong) - 5} more" if len(wrong) > 5 else "")
        raise BadInputError(f"{where}: its class names are not COCO's 80 in the standard order ({shown})")


def check_ultralytics_yaml(cfg: dict, where: str) -> None:
    """Every layer of an Ultralytics yaml must name an nn.Module class (``parse_model`` would call whatever it
    names, and ``eval`` the activation): refuse anything else before building."""
    import torchvision.ops
    import ultralytics.nn.tasks as tasks

    try:
        layout = list(cfg["backbone"]) + list(cfg["head"])
    except (KeyError, TypeError) as exc:
        raise BadInputError(f"{where}: the model yaml has no backbone / head ({exc})") from exc
    for i, row in enumerate(layout):
        if not (isinstance(row, (list, tuple)) and len(row) == 4 and isinstance(row[2], str)):
            raise BadInputError(f"{where}: model yaml layer {i} is {row!r}, expected [from, number, module, args]")
        name = row[2]
        if name.startswith("nn."):
            obj = getattr(torch.nn, name[3:], None)
        elif name.startswith("torchvision.ops."):
            obj = getattr(torchvision.ops, name[16:], None)
        else:
            obj = vars(tasks).get(name)
        if name == "Silence":  # YOLOv9's old name, replaced by nn.Identity in DetectionModel
            continue
        if not (isinstance(obj, type) and issubclass(obj, torch.nn.Module)):
            raise BadInputError(f"{where}: model yaml layer {i} names {name!r}, which is not a torch or Ultralytics "
                                f"layer; refused")
    if cfg.get("activation"):
        parse_activation(cfg["activation"])


# the task model --------------------------------------------------------------------------------------------------
class UltralyticsYOLO(TaskModel):
    """Any Ultralytics-format COCO detector, chosen by its weights file (``yolo:yolo11n.pt``)."""

    info = TaskModelInfo(
        name="yolo",
        display_name="YOLO (Ultralytics)",
        task="detection",
        label_space="coco-80",
        paper="Jocher et al., Ultralytics YOLO (YOLOv8 2023, YOLO11 2024, YOLO26 2025)",
        year=2023,
        preprocessing=PREPROCESSING,
        variants={"yolov8n.pt": Variant(weights=(WeightsFile("yolov8n.pt", url=f"{ASSETS_URL}/yolov8n.pt", folder="yolo"),),
                                        description="YOLOv8n, 3.2 M parameters", trained_on="COCO train2017, 80 classes")},
        default_variant="yolov8n.pt",
        description="anchor-free Ultralytics detectors read from their .pt checkpoints without running pickled code; "
                    "the variant is the weights file (official asset name or a path)",
        code_url="https://github.com/ultralytics/ultralytics",
        licence="AGPL-3.0",
        open_variants=True,
    )

    net: torch.nn.Module | None = None

    def __init__(self, variant: str | None = None) -> None:
        super().__init__(variant)
        text = self.variant.strip()
        if not text:
            raise BadInputError("task model yolo: give a weights file, e.g. yolo:yolo11n.pt or yolo:/path/to/best.pt")
        is_path = text.startswith(("/", "~", "./", "../")) or os.sep in text or "/" in text
        self._file = str(Path(text).expanduser().resolve()) if is_path else text
        self._is_path = is_path

    def weights_for_variant(self, variant: str) -> tuple[WeightsFile, ...]:
        if self._is_path:  # an absolute path: resolve_weights' <dir>/<folder>/<file> is that path itself
            return (WeightsFile(self._file, url=None, folder="yolo", how_to_get="a local checkpoint named by its path"),)
        if self._file in OFFICIAL_DETECTORS:
            return (WeightsFile(self._file, url=f"{ASSETS_URL}/{self._file}", folder="yolo"),)
        return (WeightsFile(self._file, url=None, folder="yolo",
                            how_to_get="not an official Ultralytics detection asset: copy your checkpoint there, or "
                                       "give its path as the variant (yolo:/path/to/best.pt)"),)

    def required_weights(self) -> tuple[WeightsFile, ...]:
        return self.weights_for_variant(self.variant)

    def load(self, device: torch.device) -> None:
        self.device = device
        path = self.weights_path(self._file)
        fix = "use an Ultralytics detection checkpoint (.pt saved by ultralytics 8.x)"
        ckpt = sp.load_checkpoint(path, self.owner, fix)
        record = None
        if isinstance(ckpt, dict):
            record = ckpt.get("ema") if sp.is_inert(ckpt.get("ema")) else ckpt.get("model")
        if not sp.is_inert(record):
            raise BadInputError(f"{self.owner}: checkpoint {path} holds no pickled model under 'ema' or 'model' "
                                f"(a plain state dict cannot be rebuilt without its yaml); {fix}")
        ref = sp.inert_ref(record)
        if ref in ("models.yolo.Model", "models.yolo.DetectionModel"):
            raise BadInputError(f"{self.owner}: {path} is an original YOLOv5 checkpoint ({ref}); use the yolov5 task "
                                f"model (yolov5:{Path(self._file).name}) or the Ultralytics re-release (yolov5nu.pt ...)")
        if not ref.startswith("ultralytics.") or not ref.endswith("DetectionModel") or "RTDETR" in ref:
            raise BadInputError(f"{self.owner}: {path} holds a {ref}, not an Ultralytics YOLO DetectionModel; {fix}")
        where = f"{self.owner}: checkpoint {path}"
        cfg = sp.inert_attr(record, "yaml")
        if not isinstance(cfg, dict):
            raise BadInputError(f"{where}: the model has no yaml dict to rebuild it from; {fix}")
        cfg = sp.require_plain(cfg, f"{where}: the model yaml")
        nc = int(cfg.get("nc", 0) or 0)
        check_coco_names(sp.inert_attr(record, "names"), nc, where)

        prepare_ultralytics()
        check_ultralytics_yaml(cfg, where)
        from ultralytics.nn.tasks import DetectionModel

        try:
            net = DetectionModel(cfg=copy.deepcopy(cfg), ch=int(cfg.get("channels", 3) or 3), nc=nc, verbose=False)
        except Exception as exc:
            raise BadInputError(f"{where}: ultralytics cannot build the model from its yaml ({type(exc).__name__}: "
                                f"{exc}); {fix}") from exc
        try:
            state = sp.to_float32(sp.module_state_dict(record))
            net.load_state_dict(state, strict=True)
        except (RuntimeError, BadInputError) as exc:
            raise BadInputError(f"{where}: the weights do not match the model built from its yaml: "
                                f"{_short(exc)}; {fix}") from exc
        saved = _saved_end2end(record)
        if saved is not None and bool(getattr(net, "end2end", False)) != saved:
            try:  # the head the checkpoint was set to use (NMS-free one-to-one branch or not)
                net.end2end = saved
            except AttributeError:
                pass
        self.net = net.to(device).float().eval()

    def predict(self, image: np.ndarray) -> Detections:
        if self.net is None:
            raise BadInputError(f"{self.owner}: predict() called before load()")
        rgb = to_uint8(image, self.owner)
        padded = letterbox(rgb)
        with torch.inference_mode():
            out = self.net(to_input(padded, self.device))
            if isinstance(out, (list, tuple)):
                out = out[0]
            out = out[0].float()
            input_hw, image_hw = padded.shape[:2], rgb.shape[:2]
            if getattr(self.net, "end2end", False):
                keep = out[:, 4] > CONF_THRESHOLD  # NMS-free head: x1, y1, x2, y2, score, class (top max_det)
                out = out[keep][:MAX_DET]
                return detections_from(out[:, :4], out[:, 4], out[:, 5].long(), input_hw, image_hw)
            pred = out.T  # N x (4 + nc): centre x, centre y, w, h, class scores
            boxes, scores, classes = multi_label_nms(xywh_to_xyxy(pred[:, :4]), pred[:, 4:4 + self.net.model[-1].nc])
            return detections_from(boxes, scores, classes, input_hw, image_hw)

    def network(self) -> torch.nn.Module | None:
        return self.net


def _saved_end2end(record: Any) -> bool | None:
    """The pickled head's ``_end2end`` switch, None if absent. Ultralytics 8.4's predictor keeps the mode a loaded
    model was saved in (``nms=None``): the one-to-one NMS-free branch only when ``_end2end`` is set (or the
    one-to-many branch was fused away)."""
    try:
        head = list(sp.inert_attrs(sp.inert_attr(record, "_modules")["model"])["_modules"].values())[-1]
    except (KeyError, IndexError, TypeError):
        return None
    value = sp.inert_attr(head, "_end2end")
    return value if isinstance(value, bool) else None


def _short(exc: Exception, limit: int = 400) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + " ..."
