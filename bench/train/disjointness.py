"""Are training photographs disjoint from every evaluation image? Exact hashes and a near-duplicate search.

Measure, in two stages:

1. Candidates. Each image becomes a greyscale (BT.601 luma) thumbnail of ``THUMB_SIDE`` x ``THUMB_SIDE`` px (area
   resampling, aspect ignored), normalised to zero mean and unit norm; views add the mirror image and crops that
   remove ``CROP_FRACTION`` of any combination of sides. The ``CANDIDATES`` evaluation images with the highest
   thumbnail correlation are kept for each training image (copies rank in the top 8 of ~550 in calibration).
2. Aligned distance. Both images are reduced to ``ALIGN_SIDE`` px on their longer side (area resampling) and
   band-pass filtered (difference of Gaussians, sigma ``ALIGN_BLUR`` px against JPEG blocks, resampling and rain
   streaks, minus sigma ``ALIGN_BACKGROUND`` px so that a shared sky/ground layout does not look like a copy);
   the central ``1 - 2 * ALIGN_MARGIN`` of one image is
   searched in the other (both ways, evaluation image mirrored or not, template scaled by ``ALIGN_SCALES``) with
   normalised cross-correlation (cv2.TM_CCOEFF_NORMED). distance = 1 - best correlation, in [0, 2]; 0 = same
   picture. It survives resizing, re-encoding, colour shifts and crops removing up to about 15 % per axis.
   Not detected: rotations by 90 degrees, smaller crops of a larger picture, heavy edits.

Evaluation sets are located under a data root (the project's ``../shared/data``); absent ones are skipped with
a note. The embedded default suite is compared through its clean sources: the full scikit-image and
scikit-learn sample photographs it crops.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bench.errors import BadInputError
from bench.images import list_images, read_image

THUMB_SIDE = 32  # px, side of the square greyscale thumbnail (stage 1)
CROP_FRACTION = 0.06  # fraction of a side removed by the crop views (stage 1)
CANDIDATES = 12  # evaluation images verified per training image (stage 2)
ALIGN_SIDE = 128  # px, longer side of the images compared in stage 2
ALIGN_BLUR = 1.5  # px at ALIGN_SIDE, fine scale of the band-pass
ALIGN_BACKGROUND = 8.0  # px at ALIGN_SIDE, coarse scale removed by the band-pass
ALIGN_MARGIN = 0.1  # fraction of each side left out of the searched template
ALIGN_SCALES = (0.85, 0.9, 0.95, 1.0, 1.05, 1.11, 1.18)  # template scale factors tried
# Stage-2 distance under which a training image counts as a copy of an evaluation image. Calibration (547
# evaluation images): the 100 Rain100L targets vs their BSDS500 originals (JPEG 481x321 -> PNG 480x320) <= 0.0044;
# 120 synthetic copies (x0.3-0.9, crops 0-5 % per side or up to 12 % on one, mirror, colour shift, JPEG q50-90)
# <= 0.036; Rain100L rainy inputs vs their own targets: median 0.019, 96 of 100 under 0.10 (heavy streaks
# hide the rest); nearest unrelated photographs (407 training photos, 209 unused BSDS500 train/val images) >= 0.168.
DUPLICATE_THRESHOLD = 0.10

# (set name, folder under the data root, file filter)
EVALUATION_SETS: list[tuple[str, str, Callable[[Path], bool]]] = [
    ("rain100l", "rain100l/target", lambda p: True),
    ("camvid_test", "camvid/test", lambda p: True),
    ("sirr_real147", "sirr_real147", lambda p: True),
    ("moss_real48", "moss_real48/input", lambda p: True),
    ("cityscapes_samples", "cityscapes_samples", lambda p: "leftImg8bit" in p.name),
    ("coco8", "coco8/images/train", lambda p: True),
    ("coco8", "coco8/images/val", lambda p: True),
]


def measure_description() -> str:
    """One sentence naming the distance and its parameters (for reports)."""
    return (f"1 - best normalised cross-correlation of band-passed greyscale images ({ALIGN_SIDE} px longer side, "
            f"DoG sigma {ALIGN_BLUR}/{ALIGN_BACKGROUND} px), the centre {1 - 2 * ALIGN_MARGIN:.0%} of either image "
            f"searched in the other at scales {ALIGN_SCALES[0]}-{ALIGN_SCALES[-1]}, mirrored or not, over the "
            f"{CANDIDATES} candidates nearest by {THUMB_SIDE}x{THUMB_SIDE} thumbnail correlation; 0 = same picture")


def sha256_file(path: Path) -> str:
    """Hex sha256 of the file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _grey(image: np.ndarray) -> np.ndarray:
    """float HxWx3 RGB in [0,1] (or uint8) -> float32 HxW luma in [0,1]."""
    image = np.asarray(image, dtype=np.float32)
    if image.max(initial=0.0) > 1.0:
        image = image / 255.0
    return image[..., 0] * 0.299 + image[..., 1] * 0.587 + image[..., 2] * 0.114


def _thumb(grey: np.ndarray) -> np.ndarray:
    """HxW luma -> flat zero-mean, unit-norm thumbnail (so a dot product is the Pearson correlation)."""
    import cv2

    small = cv2.resize(grey, (THUMB_SIDE, THUMB_SIDE), interpolation=cv2.INTER_AREA).astype(np.float64).ravel()
    small -= small.mean()
    norm = np.linalg.norm(small)
    return (small / norm if norm > 1e-9 else small).astype(np.float32)


def thumbnails(image: np.ndarray, crops: bool, mirror: bool) -> np.ndarray:
    """Thumbnails (K x THUMB_SIDE**2) of ``image`` (HxWx3 RGB): the full frame first, then, if asked, every
    combination of removing CROP_FRACTION from each side, then the mirrored versions of all of those."""
    grey = _grey(image)
    h, w = grey.shape
    dy, dx = max(1, round(h * CROP_FRACTION)), max(1, round(w * CROP_FRACTION))  # same view count at any size
    boxes = [(0, h, 0, w)]
    if crops:
        boxes += [(top * dy, h - bottom * dy, left * dx, w - right * dx)
                  for top, bottom, left, right in itertools.product((0, 1), repeat=4) if top or bottom or left or right]
    views = [grey[y0:y1, x0:x1] for y0, y1, x0, x1 in boxes]
    if mirror:
        views += [view[:, ::-1] for view in views]
    return np.stack([_thumb(np.ascontiguousarray(view)) for view in views])


def aligned_grey(image: np.ndarray) -> np.ndarray:
    """HxWx3 RGB (float in [0,1] or uint8) -> float32 band-passed luma with the longer side ALIGN_SIDE px."""
    import cv2

    grey = _grey(image)
    scale = ALIGN_SIDE / max(grey.shape)
    size = (max(8, round(grey.shape[1] * scale)), max(8, round(grey.shape[0] * scale)))
    small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(small, (0, 0), ALIGN_BLUR) - cv2.GaussianBlur(small, (0, 0), ALIGN_BACKGROUND)


def _template_match(template_source: np.ndarray, target: np.ndarray) -> float:
    """Best TM_CCOEFF_NORMED of the central part of ``template_source``, at ALIGN_SCALES, anywhere in ``target``."""
    import cv2

    h, w = template_source.shape
    my, mx = round(h * ALIGN_MARGIN), round(w * ALIGN_MARGIN)
    core = template_source[my:h - my, mx:w - mx]
    best = -1.0
    for scale in ALIGN_SCALES:
        th, tw = round(core.shape[0] * scale), round(core.shape[1] * scale)
        if th < 8 or tw < 8 or th > target.shape[0] or tw > target.shape[1]:
            continue
        template = cv2.resize(core, (tw, th), interpolation=cv2.INTER_AREA)
        if template.std() < 1e-6:
            continue
        best = max(best, float(cv2.matchTemplate(target, template, cv2.TM_CCOEFF_NORMED).max()))
    return best


def aligned_distance(train_grey: np.ndarray, eval_grey: np.ndarray) -> float:
    """Stage-2 distance in [0, 2] between two :func:`aligned_grey` images: 1 - the best normalised cross-correlation
    of either image's centre searched in the other, the evaluation image mirrored or not."""
    best = -1.0
    for target in (eval_grey, np.ascontiguousarray(eval_grey[:, ::-1])):
        best = max(best, _template_match(train_grey, target), _template_match(target, train_grey))
    return float(np.clip(1.0 - best, 0.0, 2.0))


def image_distance(train_image: np.ndarray, eval_image: np.ndarray) -> float:
    """Near-duplicate distance in [0, 2] between two HxWx3 RGB images (0 = same picture)."""
    return aligned_distance(aligned_grey(train_image), aligned_grey(eval_image))


def _distances(train_thumbs: list[np.ndarray], eval_thumbs: list[np.ndarray]) -> np.ndarray:
    """Stage-1 distances (n_train x n_eval): 1 - max thumbnail correlation of (train full frame vs every eval
    view) and (every train crop vs the eval full frame, mirrored or not)."""
    if not train_thumbs or not eval_thumbs:
        return np.full((len(train_thumbs), len(eval_thumbs)), 2.0, dtype=np.float32)
    n_views_eval = eval_thumbs[0].shape[0]
    half = n_views_eval // 2  # index of the mirrored full frame
    eval_all = np.concatenate(eval_thumbs)  # (m * V) x D
    eval_full = np.concatenate([e[[0, half]] for e in eval_thumbs])  # (m * 2) x D
    train_full = np.stack([t[0] for t in train_thumbs])
    n_views_train = train_thumbs[0].shape[0]
    train_all = np.concatenate(train_thumbs)
    m = len(eval_thumbs)
    best_a = (train_full @ eval_all.T).reshape(len(train_thumbs), m, n_views_eval).max(axis=2)
    best_b = (train_all @ eval_full.T).reshape(len(train_thumbs), n_views_train, m, 2).max(axis=(1, 3))
    return (1.0 - np.maximum(best_a, best_b)).clip(0.0, 2.0)


@dataclass
class EvaluationImage:
    set_name: str
    name: str  # path relative to the data root, or "embedded:<photo>"
    sha256: str | None  # None for in-memory photographs
    thumbs: np.ndarray = field(repr=False)  # stage-1 views, see :func:`thumbnails`
    grey: np.ndarray = field(repr=False)  # stage-2 image, see :func:`aligned_grey`


def _evaluation_image(set_name: str, name: str, sha256: str | None, image: np.ndarray) -> EvaluationImage:
    return EvaluationImage(set_name, name, sha256, thumbnails(image, crops=True, mirror=True), aligned_grey(image))


def embedded_sources() -> list[tuple[str, np.ndarray]]:
    """The clean photographs the embedded default suite is cropped from (uint8 HxWx3)."""
    from bench.data.embedded import _photographs

    return _photographs()


def evaluation_images(data_root: Path, include_embedded: bool = True) -> tuple[list[EvaluationImage], list[str]]:
    """All evaluation images found under ``data_root`` (plus the embedded suite's sources) and notes on
    the sets that were skipped."""
    found: list[EvaluationImage] = []
    notes: list[str] = []
    for set_name, folder, keep in EVALUATION_SETS:
        path = data_root / folder
        if not path.is_dir():
            notes.append(f"{set_name}: {path} not found, skipped")
            continue
        for file in filter(keep, list_images(path)):
            found.append(_evaluation_image(set_name, str(file.relative_to(data_root)), sha256_file(file),
                                           read_image(file)))
    if include_embedded:
        for name, photo in embedded_sources():
            found.append(_evaluation_image("embedded", f"embedded:{name}", None, photo))
    return found, notes


@dataclass
class TrainImageCheck:
    """One training image against all evaluation images. distance: stage-2 distance to ``closest``, in [0, 2]."""

    file: str
    source: str
    sha256: str
    exact_match: str | None  # evaluation file with the same sha256
    closest: str | None  # closest evaluation image
    distance: float
    near_duplicate: bool


@dataclass
class SourceSummary:
    source: str
    images: int
    exact_matches: int
    near_duplicates: int
    closest_train: str | None
    closest_eval: str | None
    distance: float

    @property
    def verdict(self) -> str:
        return "disjoint" if self.exact_matches == 0 and self.near_duplicates == 0 else "OVERLAP: drop listed files"


@dataclass
class DisjointnessReport:
    threshold: float
    evaluation_counts: dict[str, int]
    notes: list[str]
    images: list[TrainImageCheck]

    @property
    def flagged(self) -> list[TrainImageCheck]:
        """Training images to drop: exact sha256 matches and near-duplicates."""
        return [c for c in self.images if c.exact_match or c.near_duplicate]

    def summaries(self) -> list[SourceSummary]:
        """Per training source: counts and its closest evaluation image."""
        out = []
        for source in sorted({c.source for c in self.images}):
            group = [c for c in self.images if c.source == source]
            best = min(group, key=lambda c: c.distance)
            out.append(SourceSummary(source, len(group), sum(c.exact_match is not None for c in group),
                                     sum(c.near_duplicate for c in group), best.file, best.closest, best.distance))
        return out

    def to_json(self) -> dict:
        return {"measure": measure_description(), "threshold": self.threshold,
                "evaluation_counts": self.evaluation_counts, "notes": self.notes,
                "sources": [dict(asdict(s), verdict=s.verdict) for s in self.summaries()],
                "flagged": [c.file for c in self.flagged],
                "images": [asdict(c) for c in self.images]}

    def to_markdown(self) -> str:
        """A table per training source (for a model card), the evaluation sets checked, and flagged files."""
        total = sum(self.evaluation_counts.values())
        lines = [
            "## Training data vs evaluation data",
            "",
            f"Checked against {total} evaluation images: "
            + ", ".join(f"{k} ({v})" for k, v in self.evaluation_counts.items()) + ".",
            f"Exact match: same sha256. Distance: {measure_description()}; near-duplicate below {self.threshold}.",
            "",
            "| source | images | exact-hash matches | closest evaluation image | distance | verdict |",
            "|---|---:|---:|---|---:|---|",
        ]
        for s in self.summaries():
            closest = f"{s.closest_eval} (to {Path(s.closest_train).name})" if s.closest_eval else "-"
            lines.append(f"| {s.source} | {s.images} | {s.exact_matches} | {closest} | {s.distance:.3f} | {s.verdict} |")
        lines += ["", "Near-duplicates and exact matches (drop these):" if self.flagged else
                  "Near-duplicates and exact matches: none."]
        lines += [f"- {Path(c.file).name} ~ {c.exact_match or c.closest} "
                  f"({'same sha256' if c.exact_match else f'distance {c.distance:.3f}'})" for c in self.flagged]
        if self.notes:
            lines += ["", "Skipped: " + "; ".join(self.notes) + "."]
        return "\n".join(lines) + "\n"

    def write(self, markdown: Path | None = None, json_path: Path | None = None) -> None:
        if markdown is not None:
            markdown.write_text(self.to_markdown())
        if json_path is not None:
            json_path.write_text(json.dumps(self.to_json(), indent=1))


def source_of(file: Path, folder: Path) -> str:
    """A training image's source: its file-name prefix before the first '-' (``bsds500-test-2018.png`` ->
    ``bsds500``), else the folder name."""
    return file.name.split("-", 1)[0] if "-" in file.name else folder.name


def _closest(image: np.ndarray, evals: list[EvaluationImage]) -> tuple[str | None, float]:
    """The evaluation image nearest to ``image`` (HxWx3 RGB) and its stage-2 distance."""
    if not evals:
        return None, 2.0
    thumb_dist = _distances([thumbnails(image, crops=True, mirror=False)], [e.thumbs for e in evals])[0]
    grey = aligned_grey(image)
    scored = [(aligned_distance(grey, evals[j].grey), evals[j].name)
              for j in np.argsort(thumb_dist, kind="stable")[:CANDIDATES]]
    d, name = min(scored)
    return name, d


def check_disjointness(train_folders: Iterable[Path], data_root: Path, threshold: float = DUPLICATE_THRESHOLD,
                       evaluation: tuple[list[EvaluationImage], list[str]] | None = None) -> DisjointnessReport:
    """Compare every image in ``train_folders`` with every evaluation image under ``data_root``.

    ``evaluation`` may pass a precomputed :func:`evaluation_images` result. Raises BadInputError naming a folder
    that is missing or holds no images."""
    files: list[tuple[Path, str]] = []
    for folder in map(Path, train_folders):
        if not folder.is_dir():
            raise BadInputError(f"training folder {folder}: not found; give a folder of clean photographs")
        images = list_images(folder)
        if not images:
            raise BadInputError(f"training folder {folder}: no images (expected *.png / *.jpg directly inside)")
        files += [(f, source_of(f, folder)) for f in images]
    evals, notes = evaluation if evaluation is not None else evaluation_images(Path(data_root))
    by_hash = {e.sha256: e.name for e in evals if e.sha256}
    checks = []
    for file, source in files:
        image = read_image(file)
        digest = sha256_file(file)
        closest, d = _closest(image, evals)
        checks.append(TrainImageCheck(str(file), source, digest, by_hash.get(digest), closest, round(d, 4),
                                      d < threshold))
    counts: dict[str, int] = {}
    for e in evals:
        counts[e.set_name] = counts.get(e.set_name, 0) + 1
    return DisjointnessReport(threshold, counts, notes, checks)
