"""The one image loader: formats it accepts, errors it names, exact 16-bit output storage."""

import numpy as np
import pytest
from PIL import Image

from bench.errors import BadInputError
from bench.images import read_image, read_png16, to_uint16, write_png16
from bench.metrics.profiles import quantise_output


def test_png16_roundtrip_is_exact_and_8bit_values_survive_both_quantisations(tmp_path):
    rng = np.random.default_rng(0)
    image8 = rng.integers(0, 256, (5, 7, 3)).astype(np.uint8)
    write_png16(tmp_path / "o.png", image8 / 255.0)
    stored = read_png16(tmp_path / "o.png")
    assert stored.dtype == np.uint16 and np.array_equal(stored, image8.astype(np.uint16) * 257)
    for rule in ("round", "truncate"):
        assert np.array_equal(quantise_output(stored, rule), image8.astype(np.float64))


def test_truncation_and_rounding_differ_as_the_profiles_expect():
    value = np.full((1, 1, 3), 100.7 / 255.0)
    assert quantise_output(to_uint16(value), "truncate")[0, 0, 0] == 100
    assert quantise_output(to_uint16(value), "round")[0, 0, 0] == 101


def test_greyscale_rgba_and_16bit_inputs_are_converted(tmp_path):
    Image.fromarray(np.full((4, 4), 200, np.uint8), "L").save(tmp_path / "g.png")
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 10
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    write_png16(tmp_path / "w.png", np.full((4, 4, 3), 0.5))
    grey = read_image(tmp_path / "g.png")
    assert grey.shape == (4, 4, 3) and np.allclose(grey, 200 / 255)
    assert np.allclose(read_image(tmp_path / "a.png")[..., 0], 1.0)
    assert np.allclose(read_image(tmp_path / "w.png"), 32768 / 65535)


def test_corrupt_and_truncated_files_raise_errors_naming_the_file(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3)).astype(np.uint8)).save(tmp_path / "t.jpg")
    data = (tmp_path / "t.jpg").read_bytes()
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
    for name in ("bad.png", "t.jpg"):
        with pytest.raises(BadInputError, match=name):
            read_image(tmp_path / name)


def test_truncated_files_fail_even_when_a_library_allows_them_process_wide(tmp_path, monkeypatch):
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # as importing pyiqa.data does
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3)).astype(np.uint8)).save(tmp_path / "t.jpg")
    data = (tmp_path / "t.jpg").read_bytes()
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInputError, match="t.jpg"):
        read_image(tmp_path / "t.jpg")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the setting is restored


def test_unidentifiable_files_are_bad_inputs_after_ultralytics_patches_pillow(tmp_path):
    """Importing ultralytics wraps Image.open to pip-install an image plugin on unknown files; a corrupt input
    must still fail as a bad image (no install, no ModuleNotFoundError)."""
    patches = pytest.importorskip("ultralytics.utils.patches")
    assert Image.open is patches.image_open  # the wrapper is in place for this check
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(BadInputError, match="bad.png"):
        read_image(tmp_path / "bad.png")
