"""The generic ``precomputed`` method and ``moss:published`` (the MOSS authors' own outputs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.errors import BadInputError, UnavailableError, UnknownNameError
from bench.methods.api import PrecomputedMethod
from bench.methods.registry import create_method
from methods.moss.plugin import MOSS
from methods.precomputed import Precomputed, find_by_stem


@pytest.fixture
def outputs(tmp_path: Path):
    """A configured folder ``mine``: flat outputs plus a per-dataset sub-folder for rain100l."""
    folder = tmp_path / "outs"
    (folder / "rain100l").mkdir(parents=True)
    (folder / "1.png").write_bytes(b"x")
    (folder / "2.JPG").write_bytes(b"x")
    (folder / "notes.txt").write_bytes(b"x")
    (folder / "rain100l" / "1.jpg").write_bytes(b"x")
    Precomputed.configure("mine", folder)
    yield folder
    Precomputed.forget("mine")


def test_configured_folder_becomes_a_variant(outputs):
    assert "mine" in Precomputed.info.variants
    method = create_method("precomputed:mine")
    assert isinstance(method, PrecomputedMethod) and method.spec == "precomputed:mine"
    assert method.unavailable_reason() is None and method.required_weights() == ()


def test_output_found_by_stem_any_extension(outputs):
    method = Precomputed("mine")
    assert method.output_path("sirr", "1") == outputs / "1.png"
    assert method.output_path("sirr", "2") == outputs / "2.JPG"
    assert method.output_path("sirr", "3") is None
    assert method.output_path("sirr", "notes") is None  # not an image


def test_dataset_subfolder_takes_precedence(outputs):
    method = Precomputed("mine")
    assert method.output_path("rain100l", "1") == outputs / "rain100l" / "1.jpg"
    assert method.output_path("rain100l", "2") is None  # the sub-folder is the whole answer for its dataset


def test_missing_output_error_names_folder_and_stem(outputs):
    with pytest.raises(BadInputError) as err:
        Precomputed("mine").require_output("sirr", "42")
    assert "42" in str(err.value) and str(outputs) in str(err.value)


def test_ambiguous_stem_is_an_error(outputs):
    (outputs / "1.jpg").write_bytes(b"x")
    with pytest.raises(BadInputError, match=r"1\.jpg.*1\.png|1\.png.*1\.jpg"):
        Precomputed("mine").output_path("sirr", "1")


def test_stems_with_glob_characters(tmp_path):
    (tmp_path / "a[1].png").write_bytes(b"x")
    assert find_by_stem(tmp_path, "a[1]") == tmp_path / "a[1].png"


def test_unknown_name_explains_the_configuration(outputs):
    with pytest.raises(UnknownNameError) as err:
        Precomputed("other")
    message = str(err.value)
    assert "[precomputed.other]" in message and "bench.toml" in message and "mine" in message


def test_missing_folder_is_unavailable(tmp_path):
    Precomputed.configure("gone", tmp_path / "nowhere")
    try:
        method = Precomputed("gone")
        assert "does not exist" in method.unavailable_reason()
        with pytest.raises(UnavailableError, match="nowhere"):
            method.output_path("sirr", "1")
    finally:
        Precomputed.forget("gone")
    assert "gone" not in Precomputed.info.variants


def test_moss_published_layouts(tmp_path):
    method = MOSS("published")
    method.data_root = tmp_path
    assert "moss_real48/moss_output" in method.unavailable_reason()
    with pytest.raises(UnavailableError):
        method.output_path("moss", "1")
    (tmp_path / "moss" / "moss_output").mkdir(parents=True)
    (tmp_path / "moss" / "moss_output" / "5.jpg").write_bytes(b"x")
    assert method.unavailable_reason() is None
    assert method.output_path("moss", "5") == tmp_path / "moss" / "moss_output" / "5.jpg"
    assert method.output_path("moss", "6") is None
    assert method.output_path("rain100l", "5") is None  # MOSS outputs belong to the MOSS inputs only


def test_moss_published_on_shared_data(shared_data):
    method = create_method("moss:published")
    method.data_root = shared_data
    inputs = sorted((shared_data / "moss_real48" / "input").glob("*.jpg"))
    found = {p.stem: method.output_path("moss", p.stem) for p in inputs}
    assert len(inputs) == 48
    assert all(path is not None and path.parent == shared_data / "moss_real48" / "moss_output" for path in found.values())
