"""Segmentation mIoU and mPA from a dataset-level confusion matrix (stored per image, summed per dataset).

Rows are reference classes, columns predicted classes plus one last column for pixels where the model
predicted no class of the reference's label space (e.g. a class the label mapping does not cover).
Reference pixels at the ignore index are not counted.
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(reference: np.ndarray, prediction: np.ndarray, num_classes: int,
                     ignore_index: int | None) -> np.ndarray:
    """int64 K x (K+1) counts; ``reference`` and ``prediction`` are int HxW of the same shape."""
    if reference.shape != prediction.shape:
        raise ValueError(f"reference {reference.shape} and prediction {prediction.shape} differ in shape")
    ref = reference.reshape(-1).astype(np.int64)
    pred = prediction.reshape(-1).astype(np.int64)
    keep = (ref >= 0) & (ref < num_classes)
    if ignore_index is not None:
        keep &= ref != ignore_index
    ref, pred = ref[keep], pred[keep]
    pred = np.where((pred >= 0) & (pred < num_classes), pred, num_classes)
    counts = np.bincount(ref * (num_classes + 1) + pred, minlength=num_classes * (num_classes + 1))
    return counts.reshape(num_classes, num_classes + 1)


def segmentation_scores(confusion: np.ndarray) -> dict[str, float | np.ndarray]:
    """miou: mean IoU over classes that occur in the reference or the prediction; mpa: mean per-class pixel
    accuracy (recall) over classes present in the reference; pixel_accuracy; iou: per-class IoU (NaN when a
    class is absent from both)."""
    confusion = np.asarray(confusion, dtype=np.float64)
    k = confusion.shape[0]
    tp = np.diag(confusion[:, :k])
    ref_total = confusion.sum(axis=1)
    pred_total = confusion[:, :k].sum(axis=0)
    union = ref_total + pred_total - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        acc = np.where(ref_total > 0, tp / ref_total, np.nan)
    total = ref_total.sum()
    return {
        "miou": float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"),
        "mpa": float(np.nanmean(acc)) if np.isfinite(acc).any() else float("nan"),
        "pixel_accuracy": float(tp.sum() / total) if total > 0 else float("nan"),
        "iou": iou,
    }


def bootstrap_segmentation(confusions: np.ndarray, resamples: int = 1000, confidence: float = 0.95,
                           seed: int = 0) -> dict[str, tuple[float, float]]:
    """Percentile-bootstrap intervals of mIoU and mPA: resample images (their confusion matrices), re-sum."""
    confusions = np.asarray(confusions, dtype=np.float64)
    n = len(confusions)
    if n < 2:
        s = segmentation_scores(confusions.sum(axis=0))
        return {"miou": (s["miou"],) * 2, "mpa": (s["mpa"],) * 2}
    rng = np.random.default_rng(seed)
    counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(resamples)])
    sums = np.einsum("bn,nij->bij", counts, confusions)
    draws = {"miou": [], "mpa": []}
    for matrix in sums:
        s = segmentation_scores(matrix)
        draws["miou"].append(s["miou"])
        draws["mpa"].append(s["mpa"])
    alpha = (1.0 - confidence) / 2.0
    return {k: (float(np.nanquantile(v, alpha)), float(np.nanquantile(v, 1 - alpha))) for k, v in draws.items()}
