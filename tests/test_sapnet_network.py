"""SAPNet network and plugin: structure, ablation switches, official checkpoints, real Rain100L images."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from bench.errors import UnavailableError
from bench.images import read_image
from bench.metrics.profiles import compute_full_reference
from methods.prenet.networks import count_parameters
from methods.sapnet.network import (
    ChannelResidualAttention,
    ProgressiveDilatedUnit,
    SAPNetwork,
)
from methods.sapnet.plugin import SAPNet

torch.set_num_threads(2)

OFFICIAL = ("sapnet_official_2021-11-27.pth", "sapnet_official_2021-09-12.pth")


def official_state(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k.removeprefix("module."): v for k, v in state.items()}


def unit_dilations(net: SAPNetwork) -> list[set[int]]:
    return [
        {m.dilation[0] for m in getattr(net, f"res_conv{k}").modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)}
        for k in range(1, 6)
    ]


def rain100l_crops(root: Path, n: int = 3, size: int = 160) -> list[tuple[np.ndarray, np.ndarray]]:
    """First ``n`` Rain100L pairs, top-left ``size`` x ``size`` crops, float32 HxWx3 in [0,1]."""
    return [
        (
            read_image(root / "rain100l" / "input" / f"{i}.png")[:size, :size],
            read_image(root / "rain100l" / "target" / f"{i}.png")[:size, :size],
        )
        for i in range(1, n + 1)
    ]


def mean_psnr(run, pairs) -> float:
    """Mean prenet-y PSNR (dB) of ``run`` (float Bx3xHxW -> same) over (rainy, clean) pairs."""
    values = []
    for rainy, clean in pairs:
        out = run(torch.from_numpy(rainy).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
        values.append(compute_full_reference(out, clean, "prenet-y")["psnr"])
    return float(np.mean(values))


def test_parameter_count_and_ablation_structure():
    full = SAPNetwork()
    assert count_parameters(full) == 180_483
    assert unit_dilations(full) == [{1}, {2}, {4}, {8}, {16}]
    assert sum(isinstance(m, ChannelResidualAttention) for m in full.modules()) == 10

    no_dilation = SAPNetwork(use_dilation=False)
    assert count_parameters(no_dilation) == 180_483
    assert unit_dilations(no_dilation) == [{1}] * 5

    no_cra = SAPNetwork(use_cra=False)
    assert count_parameters(no_cra) == 168_963  # the PReNet count: CRA adds 10 x 1,152 parameters
    assert not any(isinstance(m, ChannelResidualAttention) for m in no_cra.modules())
    assert unit_dilations(no_cra) == [{1}, {2}, {4}, {8}, {16}]

    x = torch.rand(1, 3, 12, 12)
    assert len(SAPNetwork(stages=2)(x, return_all=True)) == 2
    assert len(full(x, return_all=True)) == 6


def test_cra_scales_channels_by_a_sigmoid_of_the_pooled_features():
    cra = ChannelResidualAttention()
    x = torch.rand(2, 32, 5, 7)
    for p in cra.parameters():
        nn.init.zeros_(p)
    assert torch.allclose(cra(x), 0.5 * x)
    nn.init.eye_(cra.conv_1_1.weight[:, :, 0, 0])  # residual branch only: weight = sigmoid(channel mean)
    expected = x * torch.sigmoid(x.mean(dim=(2, 3), keepdim=True))
    assert torch.allclose(cra(x), expected, atol=1e-6)


def test_dilated_unit_keeps_size_and_is_residual():
    unit = ProgressiveDilatedUnit(dilation=16)
    x = torch.randn(1, 32, 20, 9)
    assert unit(x).shape == x.shape
    for m in unit.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.zeros_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    assert torch.equal(unit(x), torch.relu(x))  # relu(body(x) + x) with body(x) = 0


def test_forward_shape_and_zero_output_conv_returns_the_input():
    net = SAPNetwork(stages=2)
    x = torch.rand(2, 3, 19, 33)
    assert net(x).shape == x.shape
    nn.init.zeros_(net.conv[0].weight)
    nn.init.zeros_(net.conv[0].bias)
    assert all(torch.equal(e, x) for e in net(x, return_all=True))


def test_official_checkpoints_load_strictly(shared_weights):
    present = [shared_weights / "sapnet" / n for n in OFFICIAL if (shared_weights / "sapnet" / n).is_file()]
    if not present:
        pytest.skip(f"no official SAPNet checkpoint under {shared_weights / 'sapnet'}")
    for path in present:
        state = official_state(path)
        net = SAPNetwork()
        net.load_state_dict(state, strict=True)
        assert list(net.state_dict()) == list(state), path.name
        with pytest.raises(RuntimeError):
            SAPNetwork(use_cra=False).load_state_dict(state, strict=True)


def test_plugin_variants_hashes_and_own_checkpoint(shared_weights, tmp_path, monkeypatch):
    assert SAPNet.info.default_variant == "ours"
    sums = dict(line.split()[::-1] for line in (shared_weights / "SHA256SUMS").read_text().splitlines() if line)
    for variant, filename in (("official", OFFICIAL[0]), ("official-2021-09-12", OFFICIAL[1])):
        (w,) = SAPNet.info.variants[variant].weights
        assert (w.filename, w.folder) == (filename, "sapnet")
        assert w.sha256 == sums[f"weights/sapnet/{filename}"]
        assert w.url and w.url.endswith("logs/SAPNet/Model11/net_latest.pth")
        path = shared_weights / "sapnet" / filename
        if path.is_file():
            assert hashlib.sha256(path.read_bytes()).hexdigest() == w.sha256

    monkeypatch.setattr(SAPNet, "shipped", {"ours": tmp_path / "sapnet_ours.pt"})
    method = SAPNet()
    assert method.variant == "ours" and method.required_weights() == ()
    with pytest.raises(UnavailableError, match="sapnet_ours.pt"):
        method.load(torch.device("cpu"))
    # an own checkpoint may record the ablation it was trained with
    ablated = SAPNetwork(use_cra=False, stages=3)
    torch.save({"state_dict": ablated.state_dict(), "network": {"use_cra": False, "stages": 3}}, tmp_path / "sapnet_ours.pt")
    method.load(torch.device("cpu"))
    assert isinstance(method.net, SAPNetwork) and not method.net.use_cra and method.net.stages == 3
    x = torch.rand(1, 3, 16, 16)
    out = method.derain(x)
    assert out.shape == x.shape and float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert torch.allclose(out, ablated.eval()(x).clamp(0, 1))


def test_official_2021_09_12_derains_and_needs_dilation(shared_data, shared_weights):
    path = shared_weights / "sapnet" / OFFICIAL[1]
    pairs = rain100l_crops(shared_data)
    method = SAPNet("official-2021-09-12")
    method.weights = {OFFICIAL[1]: path}
    method.load(torch.device("cpu"))
    rainy_psnr = mean_psnr(lambda b: b, pairs)
    derained_psnr = mean_psnr(method.derain, pairs)
    assert derained_psnr > rainy_psnr + 6.0, (rainy_psnr, derained_psnr)

    no_dilation = SAPNetwork(use_dilation=False).eval()
    no_dilation.load_state_dict(official_state(path), strict=True)
    with torch.no_grad():
        undilated_psnr = mean_psnr(lambda b: no_dilation(b).clamp(0, 1), pairs)
    assert undilated_psnr < derained_psnr - 2.0, (derained_psnr, undilated_psnr)
