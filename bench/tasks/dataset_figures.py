"""Dataset-level downstream figures (mAP, mAP@.5, mIoU, mPA, per-class IoU) from stored per-image records.

One group is (method spec, dataset, task model, reference); its rows join the long-format summary with
``profile`` naming the task model (``yolov5:yolov5n.pt``, ``+pseudo`` when scored against pseudo-labels).
Every row of one (dataset, task model, reference) is computed over the images that all its rows share,
so a method run with ``--limit`` is compared with Rainy and GT on the same images (``n`` says how many).
Intervals: bootstrap over images (resample images, recompute the dataset figure).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from bench.tasks.annotations import BoxLabels
from bench.tasks.detection_metrics import bootstrap_map, coco_map
from bench.tasks.label_spaces import label_space
from bench.tasks.segmentation_metrics import bootstrap_segmentation, segmentation_scores

DETECTION_RESAMPLES = 100  # each resample re-runs COCO evaluation (about 60 ms for 150 images)
SEGMENTATION_RESAMPLES = 1000


def task_profile(task_model: str, reference: str) -> str:
    """``spec@hash`` + reference -> the profile shown in tables (``yolov5:yolov5n.pt+pseudo``)."""
    spec = task_model.rsplit("@", 1)[0]
    return spec + ("+pseudo" if reference == "pseudo" else "")


def _shared_images(task_results: pd.DataFrame) -> pd.DataFrame:
    """Only the records of images that every spec of their (dataset, task model, reference) has."""
    keep = []
    for _, block in task_results.groupby(["dataset", "task_model", "reference"]):
        per_spec = block.groupby("spec")["image_id"].apply(set)
        shared = set.intersection(*per_spec) if len(per_spec) else set()
        keep.append(block[block["image_id"].isin(shared)])
    return pd.concat(keep) if keep else task_results


def downstream_summary(task_results: pd.DataFrame, task_references: pd.DataFrame,
                       setups: pd.DataFrame) -> list[tuple]:
    """Rows (spec, dataset, metric, profile, n, mean, ci_low, ci_high) for every stored group."""
    if task_results.empty:
        return []
    rows: list[tuple] = []
    refs = {(r.dataset, r.image_id, r.task_model, r.reference): r.payload for r in task_references.itertuples()}
    spaces = {(r.dataset, r.task_model, r.reference): r.label_space for r in setups.itertuples()}
    task_results = _shared_images(task_results)
    groups = task_results.sort_values("image_id").groupby(["spec", "dataset", "task_model", "reference"])
    for (spec, dataset, task_model, reference), group in groups:
        profile = task_profile(task_model, reference)
        payloads = [json.loads(p) for p in group["payload"]]
        n = len(payloads)
        if "confusion" in payloads[0]:
            confusions = np.asarray([p["confusion"] for p in payloads], dtype=np.float64)
            scores = segmentation_scores(confusions.sum(axis=0))
            ci = bootstrap_segmentation(confusions, SEGMENTATION_RESAMPLES)
            for metric in ("miou", "mpa"):
                rows.append((spec, dataset, metric, profile, n, scores[metric], *ci[metric]))
            space_name = spaces.get((dataset, task_model, reference))
            names = label_space(space_name).names if space_name else [str(i) for i in range(len(scores["iou"]))]
            for name, iou in zip(names, scores["iou"], strict=False):
                if np.isfinite(iou):  # classes absent from both reference and prediction have no IoU
                    rows.append((spec, dataset, f"iou:{name}", profile, n, float(iou), float("nan"), float("nan")))
            continue
        references, kept = [], []
        for image_id, payload in zip(group["image_id"], payloads, strict=True):
            ref = refs.get((dataset, image_id, task_model, reference))
            if ref is not None:
                references.append(BoxLabels.from_payload(json.loads(ref)))
                kept.append(payload)
        if not kept:
            continue
        space_name = spaces.get((dataset, task_model, reference), "coco-80")
        num_classes = label_space(space_name).num_classes
        value = coco_map(references, kept, num_classes)
        ci = bootstrap_map(references, kept, num_classes, DETECTION_RESAMPLES)
        for metric in ("map", "map50"):
            rows.append((spec, dataset, metric, profile, len(kept), value[metric], *ci[metric]))
    return rows
