"""DDN: the guided filter, the reader of the official network.mat, the network layout and real images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from bench.errors import BadInputError
from bench.images import read_image
from bench.metrics.profiles import compute_full_reference
from methods.ddn.guided_filter import (
    box_mean,
    box_sum,
    fast_guided_filter,
    matlab_nearest_subsample,
)
from methods.ddn.matfile import FIELDS, load_ddn_mat, read_ddn_mat
from methods.ddn.network import DDNNetwork, split_base_detail
from methods.ddn.plugin import DDN


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small crops run faster on one thread than on two contended cores; restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

#: learnable values in network.mat (weight + bias + Scale_1 + Scale_2 cells), counted from the file itself
#: (test_parameter_count_equals_the_learnable_arrays_of_the_file recounts them); BatchNorm_1/2/3 are moments
DDN_PARAMETERS = 57_369


def _naive_guided_filter(guide: np.ndarray, src: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter written literally: per-window means with explicit loops (HxW float64)."""
    h, w = guide.shape

    def window_mean(img: np.ndarray) -> np.ndarray:
        out = np.empty_like(img)
        for y in range(h):
            for x in range(w):
                out[y, x] = img[max(0, y - r): y + r + 1, max(0, x - r): x + r + 1].mean()
        return out

    mean_i, mean_p = window_mean(guide), window_mean(src)
    a = (window_mean(guide * src) - mean_i * mean_p) / (window_mean(guide * guide) - mean_i**2 + eps)
    b = mean_p - a * mean_i
    return window_mean(a) * guide + window_mean(b)


def test_box_sum_matches_explicit_window_sums():
    x = torch.rand(2, 1, 11, 14, dtype=torch.float64)
    r = 3
    expected = torch.zeros_like(x)
    for y in range(11):
        for c in range(14):
            expected[..., y, c] = x[..., max(0, y - r): y + r + 1, max(0, c - r): c + r + 1].sum(dim=(-2, -1))
    assert torch.allclose(box_sum(x, r), expected, atol=1e-12)
    counts = box_sum(torch.ones(1, 1, 11, 14, dtype=torch.float64), r)
    assert counts[0, 0, 5, 5] == 49 and counts[0, 0, 0, 0] == 16  # interior 7x7, corner 4x4


def test_guided_filter_equals_the_literal_definition_and_keeps_constants():
    rng = np.random.default_rng(0)
    img = rng.random((3, 19, 23))
    got = fast_guided_filter(torch.from_numpy(img)[None], torch.from_numpy(img)[None], r=2, eps=0.01, s=1)[0].numpy()
    for c in range(3):
        assert np.allclose(got[c], _naive_guided_filter(img[c], img[c], 2, 0.01), atol=1e-10)
    const = torch.full((1, 3, 40, 52), 0.37)
    for s in (1, 4):
        assert torch.allclose(fast_guided_filter(const, const, 16, 1.0, s), const.double(), atol=1e-12)


def test_large_eps_gives_the_box_mean_and_subsampling_follows_matlab():
    x = torch.rand(1, 1, 24, 30, dtype=torch.float64)
    # eps >> variance: a -> 0, q -> mean of the window means (two box passes), at full resolution (s=1)
    q = fast_guided_filter(x, x, 2, 1e9, 1)
    assert torch.allclose(q, box_mean(box_mean(x, 2), 2), atol=1e-7)
    # imresize(I, 1/4, 'nearest') takes pixels 3, 7, 11 ... (1-based), mirrored past the end
    row = torch.arange(10.0).view(1, 1, 1, 10)
    assert matlab_nearest_subsample(row, 4).flatten().tolist() == [2.0, 6.0, 9.0]
    assert matlab_nearest_subsample(torch.zeros(1, 1, 321, 481), 4).shape[-2:] == (81, 121)


def _fake_mat(path: Path, extra: dict | None = None, drop: str | None = None) -> dict[str, list[np.ndarray]]:
    """A network.mat with the official struct layout and random values."""
    rng = np.random.default_rng(1)
    chans = [(3, 16)] + [(16, 16)] * 24 + [(16, 3)]
    cells: dict[str, list[np.ndarray]] = {
        "weight": [rng.standard_normal((3, 3, i, o)).astype(np.float32) for i, o in chans],
        "bias": [rng.standard_normal((o, 1)).astype(np.float32) for _, o in chans],
        "BatchNorm_1": [rng.standard_normal((o, 1)).astype(np.float32) * 1000 for _, o in chans],
        "BatchNorm_2": [rng.random((o, 1)).astype(np.float32) * 1000 + 1 for _, o in chans],
        "BatchNorm_3": [np.full((1, 1), 999.98, np.float32) for _ in chans],
        "Scale_1": [rng.standard_normal((o, 1)).astype(np.float32) for _, o in chans],
        "Scale_2": [rng.standard_normal((o, 1)).astype(np.float32) for _, o in chans],
    }
    fields = {k: v for k, v in cells.items() if k != drop} | (extra or {})
    struct = {}
    for name, arrays in fields.items():
        cell = np.empty((1, len(arrays)), dtype=object)
        for i, a in enumerate(arrays):
            cell[0, i] = a
        struct[name] = cell
    scipy.io.savemat(str(path), {"model": struct})
    return cells


def test_a_file_with_the_official_layout_loads_into_the_right_places(tmp_path):
    cells = _fake_mat(tmp_path / "network.mat")
    net = load_ddn_mat(tmp_path / "network.mat").net
    conv, bn = net.layer_slots()[7]  # layer 8: first conv of the 4th block, batch norm in front of it
    w = cells["weight"][7]
    assert torch.equal(conv.weight[5, 9, 0, 2], torch.tensor(w[2, 0, 9, 5]))  # (width, height, in, out) order
    assert torch.allclose(bn.running_mean, torch.from_numpy(cells["BatchNorm_1"][7].ravel() / np.float32(999.98)))
    assert torch.equal(bn.weight, torch.from_numpy(cells["Scale_1"][7].ravel()))
    assert torch.equal(net.tail_bn.bias, torch.from_numpy(cells["Scale_2"][25].ravel()))
    assert net.blocks[3].bn1 is bn


def test_unused_or_missing_arrays_are_errors_that_name_them(tmp_path):
    _fake_mat(tmp_path / "extra.mat", extra={"BatchNorm_4": [np.zeros((16, 1))] * 26})
    with pytest.raises(BadInputError, match="unused \\['BatchNorm_4'\\]"):
        read_ddn_mat(tmp_path / "extra.mat")
    _fake_mat(tmp_path / "missing.mat", drop="Scale_2")
    with pytest.raises(BadInputError, match="missing \\['Scale_2'\\]"):
        read_ddn_mat(tmp_path / "missing.mat")
    scipy.io.savemat(str(tmp_path / "two.mat"), {"model": {"weight": 1}, "net": 2})
    with pytest.raises(BadInputError, match="exactly one variable 'model'"):
        read_ddn_mat(tmp_path / "two.mat")
    (tmp_path / "junk.mat").write_bytes(b"not a mat file")
    with pytest.raises(BadInputError, match="junk.mat"):
        read_ddn_mat(tmp_path / "junk.mat")


def test_parameter_count_equals_the_learnable_arrays_of_the_file(shared_weights):
    cells = read_ddn_mat(shared_weights / "ddn" / "network.mat")
    in_file = sum(a.size for f in ("weight", "bias", "Scale_1", "Scale_2") for a in cells[f])
    assert in_file == DDN_PARAMETERS
    assert sum(p.numel() for p in DDNNetwork().parameters()) == DDN_PARAMETERS
    assert sum(len(cells[f]) for f in FIELDS) == 7 * 26


def _ddn(shared_weights: Path) -> DDN:
    method = DDN()
    method.weights = {w.filename: shared_weights / w.folder / w.filename for w in method.required_weights()}
    method.load(torch.device("cpu"))
    return method


def test_stored_batch_norm_moments_match_the_tensors_they_normalise(shared_data, shared_weights):
    """The layout evidence: every stored mean/variance fits the statistics of its input on a real image."""
    net = _ddn(shared_weights).net
    image = torch.from_numpy(read_image(shared_data / "rain100l" / "input" / "1.png")).permute(2, 0, 1)[None]
    seen: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out, name=name: seen.__setitem__(name, inp[0]))
             for name, m in net.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        net(image)
    for h in hooks:
        h.remove()
    fits = []
    for name, m in net.named_modules():
        if isinstance(m, torch.nn.BatchNorm2d) and name != "net.tail_bn":  # the tail sees rain, heavier in training
            x = seen[name]
            z = ((x.mean(dim=(0, 2, 3)) - m.running_mean).abs() / m.running_var.sqrt()).mean()
            ratio = (x.var(dim=(0, 2, 3)) / m.running_var).log().abs().mean()  # |log variance ratio|
            assert z < 0.5 and ratio < 1.2, (name, float(z), float(ratio))
            fits.append((float(z), float(ratio)))
    assert np.mean(fits, axis=0).tolist() < [0.25, 0.6], fits
    # the usual post-activation reading (batch norm after each conv) does not fit: block 1's first conv output
    block = net.net.blocks[0]
    with torch.no_grad():
        after_conv = block.conv1(seen["net.blocks.0.bn1"])
    z = ((after_conv.mean(dim=(0, 2, 3)) - block.bn1.running_mean).abs() / block.bn1.running_var.sqrt()).mean()
    assert z > 10, float(z)


def test_ddn_beats_the_rainy_input_on_rain100l(shared_data, shared_weights):
    method = _ddn(shared_weights)
    rainy, derained = [], []
    for i in (1, 2, 3):
        rain = read_image(shared_data / "rain100l" / "input" / f"{i}.png")[:160, :160]
        clean = read_image(shared_data / "rain100l" / "target" / f"{i}.png")[:160, :160]
        out = method.derain(torch.from_numpy(rain).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
        assert out.min() >= 0.0 and out.max() <= 1.0
        rainy.append(compute_full_reference(rain, clean, "prenet-y")["psnr"])
        derained.append(compute_full_reference(out, clean, "prenet-y")["psnr"])
    assert np.mean(derained) > np.mean(rainy) + 0.5, (rainy, derained)


def test_detail_layer_is_small_and_base_is_smooth():
    img = torch.rand(1, 3, 64, 64)
    base, detail = split_base_detail(img)
    assert torch.allclose(base + detail, img.double())
    # eps=1 on [0,1] values: the base is close to a local mean, so it varies much less than the noise
    assert base.std() < 0.2 * img.double().std()
