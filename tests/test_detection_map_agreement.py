"""mAP of the real YOLOv5n on COCO8 (clean images, real labels): our figure (faster-coco-eval) agrees with
pycocotools, the reference implementation, on the same predictions."""

import contextlib
import io

import numpy as np
import pytest
import torch

from bench.images import read_image
from bench.methods.weights import resolve_weights
from bench.tasks.annotations import read_yolo_labels
from bench.tasks.detection_metrics import _coco_dicts, coco_map
from bench.tasks.label_spaces import label_space
from bench.tasks.registry import create_task_model


def _pycocotools_map(references, predictions, num_classes):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_dict, results = _coco_dicts(references, predictions, num_classes)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = gt_dict
        gt.createIndex()
        evaluator = COCOeval(gt, gt.loadRes(results), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {"map": evaluator.stats[0], "map50": evaluator.stats[1]}


def test_yolov5n_coco8_map_agrees_with_pycocotools(shared_data, shared_weights, capsys):
    pytest.importorskip("pycocotools", reason="pycocotools is in the test extra: pip install -e '.[test]'")
    torch.set_num_threads(2)
    model = create_task_model("yolov5:yolov5n.pt")
    model.weights = resolve_weights(model, shared_weights, allow_download=False)
    model.load(torch.device("cpu"))
    space = label_space("coco-80")
    references, predictions = [], []
    for image_path in sorted((shared_data / "coco8" / "images").rglob("*.jpg")):
        image = read_image(image_path)
        label = shared_data / "coco8" / "labels" / image_path.parent.name / f"{image_path.stem}.txt"
        references.append(read_yolo_labels(label, image.shape[1], image.shape[0], space))
        det = model.predict(image)
        predictions.append({"boxes": det.boxes.tolist(), "scores": det.scores.tolist(), "classes": det.classes.tolist()})
    assert len(references) == 8 and sum(len(r.boxes) for r in references) == 30
    ours = coco_map(references, predictions, 80)
    reference = _pycocotools_map(references, predictions, 80)
    with capsys.disabled():
        print(f"\nCOCO8 yolov5n@640: faster-coco-eval mAP {ours['map']:.4f} mAP50 {ours['map50']:.4f}; "
              f"pycocotools mAP {reference['map']:.4f} mAP50 {reference['map50']:.4f}")
    assert abs(ours["map"] - reference["map"]) < 0.01 and abs(ours["map50"] - reference["map50"]) < 0.01
    assert 0.2 < ours["map50"] <= 1.0 and np.isfinite(ours["map"])
