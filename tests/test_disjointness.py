"""Training/evaluation disjointness: exact hashes, near-duplicates that survive resizing, re-encoding and crops."""

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.config import PROJECT_ROOT
from bench.train.disjointness import (
    DUPLICATE_THRESHOLD,
    check_disjointness,
    evaluation_images,
    image_distance,
)

SHARED = PROJECT_ROOT.parent / "shared" / "data"


def _disguise(image: np.ndarray, scale: float, crop: tuple[float, float, float, float], mirror: bool,
              quality: int) -> np.ndarray:
    """A copy as a scraper would store it: resized, cropped (fractions left, top, right, bottom), maybe mirrored,
    JPEG-compressed. image: uint8 HxWx3."""
    im = Image.fromarray(image)
    im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
    left, top, right, bottom = crop
    im = im.crop((round(left * im.width), round(top * im.height),
                  im.width - round(right * im.width), im.height - round(bottom * im.height)))
    if mirror:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    buffer = io.BytesIO()
    im.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"))


def _rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]


def _unrelated_photographs() -> dict[str, np.ndarray]:
    """scikit-image samples that the embedded suite does not use (uint8 HxWx3)."""
    from skimage import data

    return {name: _rgb(getattr(data, name)()) for name in
            ("camera", "coins", "moon", "clock", "brick", "grass", "hubble_deep_field", "immunohistochemistry")}


def test_disguised_copy_is_close_and_unrelated_photographs_are_far():
    from skimage import data

    astronaut, coffee = data.astronaut(), data.coffee()
    copy = _disguise(astronaut, 0.4, (0.05, 0.02, 0.0, 0.04), mirror=True, quality=60)
    assert image_distance(copy, astronaut) < DUPLICATE_THRESHOLD / 2
    assert image_distance(_disguise(coffee, 0.7, (0.0, 0.0, 0.1, 0.0), False, 80), coffee) < DUPLICATE_THRESHOLD
    assert image_distance(copy, coffee) > DUPLICATE_THRESHOLD * 2
    for name, photo in _unrelated_photographs().items():
        assert image_distance(photo, astronaut) > DUPLICATE_THRESHOLD, name


@pytest.fixture(scope="module")
def embedded_only():
    """Evaluation images of an empty data root: the embedded suite's eight source photographs."""
    return evaluation_images(Path("/nonexistent-data-root"))


def test_folder_check_flags_copies_hashes_and_nothing_else(tmp_path, embedded_only):
    from skimage import data

    evals, notes = embedded_only
    assert {e.set_name for e in evals} == {"embedded"} and len(evals) == 8
    assert any("rain100l" in note for note in notes)  # absent sets are reported, not silently ignored
    train = tmp_path / "train"
    train.mkdir()
    Image.fromarray(_disguise(data.chelsea(), 0.5, (0.03, 0.03, 0.03, 0.0), False, 70)).save(train / "web-cat.jpg")
    for name, photo in _unrelated_photographs().items():
        Image.fromarray(photo).save(train / f"skimage-{name}.png")
    # an exact copy of an evaluation file is caught by its sha256 even without thumbnails
    root = tmp_path / "data"
    (root / "coco8" / "images" / "val").mkdir(parents=True)
    Image.fromarray(data.rocket()).save(root / "coco8" / "images" / "val" / "rocket.png")
    shutil.copyfile(root / "coco8" / "images" / "val" / "rocket.png", train / "dup-rocket.png")
    found, found_notes = evaluation_images(root)
    report = check_disjointness([train], root, evaluation=(found, found_notes))

    by_name = {Path(c.file).name: c for c in report.images}
    assert by_name["web-cat.jpg"].closest == "embedded:chelsea" and by_name["web-cat.jpg"].near_duplicate
    assert by_name["dup-rocket.png"].exact_match == "coco8/images/val/rocket.png"
    flagged = {Path(c.file).name for c in report.flagged}
    assert flagged == {"web-cat.jpg", "dup-rocket.png"}
    summaries = {s.source: s for s in report.summaries()}
    assert summaries["skimage"].verdict == "disjoint" and summaries["skimage"].images == 8
    assert summaries["skimage"].distance > DUPLICATE_THRESHOLD
    assert summaries["dup"].exact_matches == 1 and summaries["web"].near_duplicates == 1
    markdown = report.to_markdown()
    assert "| skimage | 8 | 0 |" in markdown and "web-cat.jpg ~ embedded:chelsea" in markdown
    assert json.loads(json.dumps(report.to_json()))["flagged"]


def test_missing_training_folder_names_the_folder(tmp_path, embedded_only):
    from bench.errors import BadInputError

    with pytest.raises(BadInputError, match="nothere: not found"):
        check_disjointness([tmp_path / "nothere"], tmp_path, evaluation=embedded_only)


def test_cli_writes_markdown_and_json(tmp_path):
    import typer
    from skimage import data
    from typer.testing import CliRunner

    from bench.cli.train_data_cmd import check_data

    train = tmp_path / "photos"
    train.mkdir()
    Image.fromarray(data.coins()).save(train / "skimage-coins.png")
    app = typer.Typer()
    app.command()(check_data)
    out, js = tmp_path / "report.md", tmp_path / "report.json"
    result = CliRunner().invoke(app, [str(train), "--data-root", str(tmp_path / "none"), "--out", str(out),
                                      "--json", str(js), "--strict"])
    assert result.exit_code == 0, result.output
    assert "| skimage | 1 | 0 |" in out.read_text()
    assert json.loads(js.read_text())["sources"][0]["verdict"] == "disjoint"


@pytest.mark.skipif(not (SHARED / "rain100l" / "target").is_dir(),
                    reason="../shared/data/rain100l absent (real evaluation data is only on the development machine)")
def test_disguised_rain100l_target_and_its_rainy_input_are_found(tmp_path):
    root = tmp_path / "data"
    (root / "rain100l").mkdir(parents=True)
    (root / "rain100l" / "target").symlink_to(SHARED / "rain100l" / "target")
    evaluation = evaluation_images(root, include_embedded=False)
    train = tmp_path / "train"
    train.mkdir()
    target = np.asarray(Image.open(SHARED / "rain100l" / "target" / "1.png").convert("RGB"))
    Image.fromarray(_disguise(target, 0.6, (0.04, 0.0, 0.0, 0.05), True, 75)).save(train / "scraped-1.jpg")
    shutil.copyfile(SHARED / "rain100l" / "input" / "20.png", train / "rainy-20.png")
    report = check_disjointness([train], root, evaluation=evaluation)
    by_name = {Path(c.file).name: c for c in report.images}
    assert by_name["scraped-1.jpg"].closest == "rain100l/target/1.png"
    assert by_name["scraped-1.jpg"].distance < DUPLICATE_THRESHOLD / 2
    # light synthetic rain does not hide the background it was added to
    assert by_name["rainy-20.png"].closest == "rain100l/target/20.png" and by_name["rainy-20.png"].near_duplicate
