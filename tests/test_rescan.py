"""RESCAN: structure, strict loading of the BRN-retrained checkpoints, channel order, real images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bench.errors import BadInputError
from bench.images import read_image
from bench.metrics.profiles import compute_full_reference
from methods.rescan.network import RESCANNetwork
from methods.rescan.plugin import RESCAN


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small crops run faster on one thread than on two contended cores; restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

#: counted from the arrays of both BRN checkpoints (test_parameter_count_equals_the_checkpoint_arrays recounts)
RESCAN_PARAMETERS = 149_823
FILES = {"rainheavy": "rescan_rainheavy_latest", "rainlight": "rescan_rainlight_latest"}


def official_state_dict() -> dict[str, torch.Tensor]:
    """Keys and shapes of the official RESCAN state dict (ConvGRU, 24 channels, depth 7), random values."""
    state: dict[str, torch.Tensor] = {}
    for i in range(5):
        cin = 3 if i == 0 else 24
        for gate in ("z", "r", "n"):
            state[f"rnns.{i}.conv_x{gate}.weight"] = torch.randn(24, cin, 3, 3)
            state[f"rnns.{i}.conv_x{gate}.bias"] = torch.randn(24)
        for gate in ("z", "r", "n"):
            state[f"rnns.{i}.conv_h{gate}.weight"] = torch.randn(24, 24, 3, 3)
            state[f"rnns.{i}.conv_h{gate}.bias"] = torch.randn(24)
        state |= {f"rnns.{i}.se.fc.0.weight": torch.randn(6, 24), f"rnns.{i}.se.fc.0.bias": torch.randn(6),
                  f"rnns.{i}.se.fc.2.weight": torch.randn(24, 6), f"rnns.{i}.se.fc.2.bias": torch.randn(24)}
    state |= {"dec.0.weight": torch.randn(24, 24, 3, 3), "dec.0.bias": torch.randn(24),
              "dec.1.fc.0.weight": torch.randn(6, 24), "dec.1.fc.0.bias": torch.randn(6),
              "dec.1.fc.2.weight": torch.randn(24, 6), "dec.1.fc.2.bias": torch.randn(24),
              "dec.3.weight": torch.randn(3, 24, 1, 1), "dec.3.bias": torch.randn(3)}
    return state


def _method(variant: str, path: Path) -> RESCAN:
    method = RESCAN(variant)
    method.weights = {FILES[variant]: path}
    return method


def test_official_key_names_and_shapes_load_strictly(tmp_path):
    state = official_state_dict()
    net = RESCANNetwork()
    net.load_state_dict(state, strict=True)
    assert list(net.state_dict()) == list(state)  # same order as the official module
    # the official file wraps the state dict with the training clock and optimiser state
    torch.save({"net": state, "clock": 5, "opt": {"param_groups": [{"lr": 0.005}]}}, tmp_path / "latest")
    method = _method("rainheavy", tmp_path / "latest")
    method.load(torch.device("cpu"))
    assert torch.equal(method.net.rnns[2].conv_hr.weight, state["rnns.2.conv_hr.weight"])


def test_wrong_checkpoints_are_errors_that_name_the_file(tmp_path):
    state = official_state_dict()
    del state["dec.3.bias"]
    torch.save({"net": state}, tmp_path / "short")
    with pytest.raises(BadInputError, match="short does not match RESCAN.*Missing key.*dec.3.bias"):
        _method("rainlight", tmp_path / "short").load(torch.device("cpu"))
    (tmp_path / "junk").write_bytes(b"junk")
    with pytest.raises(BadInputError, match="cannot read checkpoint .*junk"):
        _method("rainlight", tmp_path / "junk").load(torch.device("cpu"))


def test_dilations_stages_and_frames():
    net = RESCANNetwork()
    assert [u.conv_xz.dilation[0] for u in net.rnns] == [1, 1, 2, 4, 8]
    assert all(u.conv_hn.dilation[0] == 1 for u in net.rnns)
    x = torch.rand(1, 3, 12, 16)
    with torch.no_grad():
        rains = net.rain_layers(x)
        assert len(rains) == 4
        assert torch.allclose(net(x), x - rains[-1])
        net.frame = "add"  # additive frame: each stage adds to the previous estimate
        added = net.rain_layers(x)
    assert torch.allclose(added[0], rains[0]) and not torch.allclose(added[1], rains[1])


def test_parameter_count_equals_the_checkpoint_arrays(shared_weights):
    for name in FILES.values():
        state = torch.load(shared_weights / "rescan_brn" / name, map_location="cpu", weights_only=True)["net"]
        assert sum(v.numel() for v in state.values()) == RESCAN_PARAMETERS, name
    assert sum(p.numel() for p in RESCANNetwork().parameters()) == RESCAN_PARAMETERS


def _loaded(variant: str, shared_weights: Path) -> RESCAN:
    method = _method(variant, shared_weights / "rescan_brn" / FILES[variant])
    method.load(torch.device("cpu"))  # strict
    return method


def _crops(root: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(read_image(root / "rain100l" / "input" / f"{i}.png")[:160, :160],
             read_image(root / "rain100l" / "target" / f"{i}.png")[:160, :160]) for i in (1, 2, 3)]


def _psnr(run, pairs) -> float:
    values = []
    for rain, clean in pairs:
        out = run(torch.from_numpy(rain).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
        values.append(compute_full_reference(out, clean, "prenet-y")["psnr"])
    return float(np.mean(values))


def test_both_checkpoints_load_strictly_and_derain_rain100l(shared_data, shared_weights):
    pairs = _crops(shared_data)
    rainy = _psnr(lambda b: b, pairs)
    light = _loaded("rainlight", shared_weights)
    heavy = _loaded("rainheavy", shared_weights)
    light_psnr, heavy_psnr = _psnr(light.derain, pairs), _psnr(heavy.derain, pairs)
    assert light_psnr > rainy + 5.0, (rainy, light_psnr)
    assert heavy_psnr > rainy + 1.0, (rainy, heavy_psnr)
    # the checkpoints were trained on OpenCV (BGR) images: feeding RGB is measurably worse
    with torch.inference_mode():
        bgr_psnr = _psnr(heavy.derain, pairs[:1])
        rgb_psnr = _psnr(lambda b: heavy.net(b).clamp(0, 1), pairs[:1])
    assert bgr_psnr > rgb_psnr + 0.3, (bgr_psnr, rgb_psnr)
