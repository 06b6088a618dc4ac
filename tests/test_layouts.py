"""Dataset layouts: pairing by stem rules (never by position), missing partners reported."""

from pathlib import Path

import numpy as np
from PIL import Image

from bench.data.layouts import detect_layout, flat, input_target, prenet, rain100_original


def _png(path: Path, value: int = 0, size=(8, 6)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)
    return path


def test_input_target_pairs_by_stem_and_reports_partners(tmp_path):
    for stem in ("1", "2", "10"):
        _png(tmp_path / "input" / f"{stem}.png")
    _png(tmp_path / "target" / "1.png")
    _png(tmp_path / "target" / "10.png")
    _png(tmp_path / "target" / "99.png")  # orphan target
    match = input_target(tmp_path)
    assert [s.image_id for s in match.samples] == ["1", "2", "10"]  # natural order
    by_id = {s.image_id: s for s in match.samples}
    assert by_id["10"].target == tmp_path / "target" / "10.png"
    assert by_id["2"].target is None and by_id["2"].missing_target == tmp_path / "target" / "2.png"
    assert len(match.problems) == 1 and "99.png" in match.problems[0]


def test_prenet_layout_pairs_rain_with_norain_even_when_sorting_would_not(tmp_path):
    # sorted() would interleave names; pairing must follow the numbers
    for i in (1, 2, 12):
        _png(tmp_path / f"rain-{i}.png", value=i)
        _png(tmp_path / f"norain-{i}.png", value=100 + i)
    match = prenet(tmp_path)
    assert {s.image_id: s.target.name for s in match.samples} == {
        "1": "norain-1.png", "2": "norain-2.png", "12": "norain-12.png"}


def test_rain100_original_layout(tmp_path):
    _png(tmp_path / "rain" / "X2" / "norain-001x2.png")
    _png(tmp_path / "rain" / "X2" / "norain-002x2.png")
    _png(tmp_path / "norain" / "norain-001.png")
    _png(tmp_path / "norain" / "norain-002.png")
    match = rain100_original(tmp_path)
    assert [(s.image_id, s.target.name) for s in match.samples] == [("001", "norain-001.png"), ("002", "norain-002.png")]


def test_flat_layout_and_detection_order(tmp_path):
    _png(tmp_path / "b.jpg")
    _png(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("not an image")
    assert [s.image_id for s in flat(tmp_path).samples] == ["a", "b"]
    assert detect_layout(tmp_path, ["input-target", "prenet", "flat"]).layout == "flat"
    assert detect_layout(tmp_path, ["input-target"]) is None
