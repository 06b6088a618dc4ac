"""Detection mAP over a whole dataset, from stored per-image boxes (COCO protocol, faster-coco-eval).

mAP is a dataset-level figure: it ranks every detection of every image together, so it is recomputed
from the per-image records each time (a report never runs a detector). Intervals come from a bootstrap
over images: resample the images, recompute mAP.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import numpy as np

from bench.tasks.annotations import BoxLabels


def _coco_dicts(references: Sequence[BoxLabels], predictions: Sequence[dict], num_classes: int) -> tuple[dict, list]:
    images, annotations, results = [], [], []
    for index, (ref, pred) in enumerate(zip(references, predictions, strict=True)):
        images.append({"id": index + 1, "width": 1, "height": 1})
        for box, cls, crowd in zip(ref.boxes, ref.classes, ref.crowd, strict=True):
            w, h = float(box[2] - box[0]), float(box[3] - box[1])
            annotations.append({"id": len(annotations) + 1, "image_id": index + 1, "category_id": int(cls) + 1,
                                "bbox": [float(box[0]), float(box[1]), w, h], "area": w * h, "iscrowd": int(crowd)})
        for box, score, cls in zip(pred["boxes"], pred["scores"], pred["classes"], strict=True):
            results.append({"image_id": index + 1, "category_id": int(cls) + 1, "score": float(score),
                            "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]})
    gt = {"images": images, "annotations": annotations,
          "categories": [{"id": c + 1, "name": str(c)} for c in range(num_classes)]}
    return gt, results


def coco_map(references: Sequence[BoxLabels], predictions: Sequence[dict], num_classes: int) -> dict[str, float]:
    """COCO box mAP@[.5:.95] ("map") and mAP@.5 ("map50") of per-image ``predictions`` (dicts with boxes
    xyxy px, scores, classes) against ``references``; NaN when the references hold no box. Up to 100
    detections per image count, as in the COCO protocol."""
    from faster_coco_eval import COCO, COCOeval_faster

    if not any(len(r.boxes) for r in references):
        return {"map": float("nan"), "map50": float("nan")}
    gt_dict, results = _coco_dicts(references, predictions, num_classes)
    if not results:
        return {"map": 0.0, "map50": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = gt_dict
        gt.createIndex()
        dt = gt.loadRes(results)
        evaluator = COCOeval_faster(gt, dt, "bbox", print_function=lambda *a, **k: None)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = evaluator.stats
    return {"map": max(float(stats[0]), 0.0), "map50": max(float(stats[1]), 0.0)}


def bootstrap_map(references: Sequence[BoxLabels], predictions: Sequence[dict], num_classes: int,
                  resamples: int = 200, confidence: float = 0.95, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Percentile-bootstrap interval of mAP and mAP@.5: resample images with replacement, recompute."""
    n = len(references)
    if n < 2:
        value = coco_map(references, predictions, num_classes)
        return {k: (v, v) for k, v in value.items()}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {"map": [], "map50": []}
    for _ in range(resamples):
        idx = rng.integers(0, n, n)
        value = coco_map([references[i] for i in idx], [predictions[i] for i in idx], num_classes)
        for k in draws:
            draws[k].append(value[k])
    alpha = (1.0 - confidence) / 2.0
    out = {}
    for k, values in draws.items():
        arr = np.asarray(values, dtype=np.float64)
        arr = arr[np.isfinite(arr)]
        out[k] = (float(np.quantile(arr, alpha)), float(np.quantile(arr, 1 - alpha))) if arr.size else (float("nan"),) * 2
    return out
