"""Shared fixtures. Tests run offline: hubs are switched off and caches are project-local."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", str(PROJECT_ROOT / ".cache" / "ultralytics"))
os.environ.setdefault("TORCH_HOME", str(PROJECT_ROOT / ".cache" / "torch"))
os.environ.setdefault("BENCH_NO_DOWNLOAD", "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the project root; skips the test where it is absent (a user's machine)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (only present on the development machines)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_weights(shared_data: Path) -> Path:
    path = shared_data / "weights"
    if not path.is_dir():
        pytest.skip(f"official weights not found at {path}")
    return path


# Downstream fixtures: coloured rectangles on grey, a colour-matching toy detector and segmenter ---------
TOY_TASK_MODELS = '''
import os, time
import numpy as np
import torch
from scipy import ndimage
from bench.methods.api import DerainMethod, MethodInfo
from bench.tasks.api import Detections, TaskModel, TaskModelInfo


class Median(DerainMethod):
    """A 5x5 median filter (removes thin streaks), sleeping TOY_DELAY seconds per image."""
    info = MethodInfo(name="median", paper="test", year=None, kind="classical")

    def derain(self, batch):
        time.sleep(float(os.environ.get("TOY_DELAY", "0")))
        padded = torch.nn.functional.pad(batch, (2, 2, 2, 2), mode="replicate")
        patches = padded.unfold(2, 5, 1).unfold(3, 5, 1)
        return patches.reshape(*patches.shape[:4], 25).median(dim=-1).values

# red, green, blue rectangles: COCO person (0), bicycle (1), car (2); Cityscapes person (11), vegetation (8), car (13)
COLOURS = np.array([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.1, 0.9]])


class ToyDetector(TaskModel):
    info = TaskModelInfo(name="toydet", task="detection", label_space="coco-80", paper="test", year=None,
                         preprocessing="none")

    def predict(self, image):
        boxes, scores, classes = [], [], []
        for cls, colour in enumerate(COLOURS):
            mask = np.linalg.norm(image - colour, axis=-1) < 0.45
            labelled, _ = ndimage.label(mask)
            for rows, cols in ndimage.find_objects(labelled):
                if (rows.stop - rows.start) * (cols.stop - cols.start) >= 12:
                    boxes.append([cols.start, rows.start, cols.stop, rows.stop])
                    scores.append(float(mask[rows, cols].mean()))
                    classes.append(cls)
        return Detections(np.asarray(boxes, dtype=np.float32).reshape(-1, 4), scores, classes)


class ToySegmenter(TaskModel):
    info = TaskModelInfo(name="toyseg", task="segmentation", label_space="cityscapes-19", paper="test", year=None,
                         preprocessing="none")
    PALETTE = np.array([[0.5, 0.5, 0.5], *COLOURS])
    IDS = np.array([0, 11, 8, 13])  # road, person, vegetation, car

    def predict(self, image):
        distance = np.linalg.norm(image[:, :, None, :] - self.PALETTE[None, None], axis=-1)
        return self.IDS[distance.argmin(axis=-1)]
'''


def make_downstream_sources(folder: Path, count: int = 6, size: tuple[int, int] = (64, 48), seed: int = 5) -> None:
    """Clean images (grey with 1-3 rectangles) in folder/images, YOLO labels (coco-80) in folder/yolo and
    CamVid-11 label PNGs (Road background, Pedestrian/Tree/Car rectangles) in folder/png."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    colours = np.array([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.1, 0.9]])
    camvid = [9, 5, 8]  # Pedestrian, Tree, Car
    width, height = size
    for sub in ("images", "yolo", "png"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image = np.full((height, width, 3), 0.5)
        label = np.full((height, width), 3, dtype=np.uint8)  # Road
        lines = []
        for k in range(1 + index % 3):
            w, h = int(rng.integers(8, 16)), int(rng.integers(8, 14))
            x, y = 2 + k * 20, int(rng.integers(2, height - h - 2))
            cls = int(rng.integers(0, 3))
            image[y:y + h, x:x + w] = colours[cls]
            label[y:y + h, x:x + w] = camvid[cls]
            lines.append(f"{cls} {(x + w / 2) / width:.6f} {(y + h / 2) / height:.6f} {w / width:.6f} {h / height:.6f}")
        Image.fromarray(np.round(image * 255).astype(np.uint8)).save(folder / "images" / f"img{index}.png")
        (folder / "yolo" / f"img{index}.txt").write_text("\n".join(lines) + "\n")
        Image.fromarray(label).save(folder / "png" / f"img{index}.png")


@pytest.fixture()
def downstream_project(tmp_path: Path) -> Path:
    """A project folder with bench.toml, toy task models and two built downstream sets (toydet, toyseg)."""
    import subprocess
    import sys

    make_downstream_sources(tmp_path / "src")
    (tmp_path / "toys.py").write_text(TOY_TASK_MODELS)
    cards = tmp_path / "cards"
    cards.mkdir()
    (tmp_path / "bench.toml").write_text(
        '[paths]\ndata_root = "data"\ncards_dir = "cards"\noutput_dir = "out"\ncache_dir = "cache"\n'
        '[run]\nefficiency_size = "off"\n[plugins]\nfiles = ["toys.py"]\n'
        '[tasks]\ndetection = "toydet"\nsegmentation = "toyseg"\n')
    for name, fmt, space in (("toydet", "yolo", "coco-80"), ("toyseg", "png", "camvid-11")):
        cmd = [sys.executable, "-m", "bench", "datasets", "build", name, "--config", str(tmp_path / "bench.toml"),
               "--images", str(tmp_path / "src" / "images"), "--labels", str(tmp_path / "src" / fmt),
               "--label-format", fmt, "--label-space", space, "--preset", "light", "--seed", "1"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        (cards / f"{name}.toml").write_text((tmp_path / "data" / name / "card.toml").read_text())
    return tmp_path / "bench.toml"
