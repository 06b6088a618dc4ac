"""PReNet-family networks and plugins: structure, official checkpoints, behaviour on real Rain100L images."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.errors import UnavailableError
from bench.images import read_image
from bench.metrics.profiles import compute_full_reference
from methods.prenet import networks as nets
from methods.prenet.plugin import PRN, PRNR, PReNet, PReNetR, RecurrentNetMethod

torch.set_num_threads(2)

OFFICIAL = {  # file in <weights>/prenet -> network class
    f"{d}_{m}_net_latest.pth": cls
    for d in ("Rain100H", "Rain100L", "Rain1400")
    for m, cls in (("PReNet6", nets.PReNet), ("PReNet6_r", nets.PReNetR), ("PRN6", nets.PRN), ("PRN6_r", nets.PRNR))
} | {"real_PReNet1.pth": nets.PReNetReal}


def _load(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def rain100l_crops(root: Path, n: int = 3, size: int = 160) -> list[tuple[np.ndarray, np.ndarray]]:
    """First ``n`` Rain100L pairs, top-left ``size`` x ``size`` crops, float32 HxWx3 in [0,1]."""
    pairs = []
    for i in range(1, n + 1):
        rainy = read_image(root / "rain100l" / "input" / f"{i}.png")[:size, :size]
        clean = read_image(root / "rain100l" / "target" / f"{i}.png")[:size, :size]
        pairs.append((rainy, clean))
    return pairs


def mean_psnr(run, pairs) -> float:
    """Mean prenet-y PSNR (dB) of ``run`` (float Bx3xHxW -> same) over (rainy, clean) pairs."""
    values = []
    for rainy, clean in pairs:
        out = run(torch.from_numpy(rainy).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
        values.append(compute_full_reference(out, clean, "prenet-y")["psnr"])
    return float(np.mean(values))


def resolved(method: RecurrentNetMethod, weights_dir: Path) -> RecurrentNetMethod:
    method.weights = {w.filename: weights_dir / w.folder / w.filename for w in method.required_weights()}
    return method


@pytest.mark.parametrize(
    ("cls", "expected"),
    [(nets.PReNet, 168_963), (nets.PReNetR, 94_979), (nets.PRN, 95_107), (nets.PRNR, 21_123), (nets.PReNetReal, 168_963)],
)
def test_parameter_counts(cls, expected):
    assert nets.count_parameters(cls()) == expected


def test_recursive_variants_apply_one_unit_five_times_per_stage():
    calls = []
    for cls, stages in ((nets.PReNetR, 6), (nets.PRNR, 3)):
        net = cls(stages=stages)
        net.res_conv1.register_forward_hook(lambda *_: calls.append(1))
        net(torch.rand(1, 3, 8, 8))
        assert len(calls) == 5 * stages
        calls.clear()
    assert not hasattr(nets.PReNetR(), "res_conv2")


def test_prn_has_no_lstm_and_prenet_state_dict_uses_official_flat_names():
    assert not any("conv_i" in k for k in nets.PRN().state_dict())
    keys = list(nets.PReNet().state_dict())
    assert "conv_i.0.weight" in keys and not any(k.startswith("lstm.") for k in keys)
    # gates come after the residual units and before the output conv, as in the official files
    assert keys.index("res_conv5.2.bias") < keys.index("conv_i.0.weight") < keys.index("conv.0.weight")


def test_nested_lstm_names_load_too():
    source = nets.PReNet()
    target = nets.PReNet()
    target.load_state_dict(dict(source.named_parameters()), strict=True)  # "lstm.conv_i..." names
    assert torch.equal(target.lstm.conv_o[0].weight, source.lstm.conv_o[0].weight)


def test_forward_shape_stages_and_zero_output_conv_returns_the_input():
    net = nets.PReNet(stages=3)
    x = torch.rand(2, 3, 17, 23)
    estimates = net(x, return_all=True)
    assert len(estimates) == 3 and all(e.shape == x.shape for e in estimates)
    assert torch.equal(estimates[-1], net(x))
    torch.nn.init.zeros_(net.conv[0].weight)
    torch.nn.init.zeros_(net.conv[0].bias)
    assert torch.equal(net(x), x)  # residual output: input + 0
    real = nets.PReNetReal()
    torch.nn.init.zeros_(real.conv[0].weight)
    torch.nn.init.zeros_(real.conv[0].bias)
    assert torch.count_nonzero(real(x)) == 0  # no residual in the real-rain architecture


def test_every_official_checkpoint_loads_strictly(shared_weights):
    folder = shared_weights / "prenet"
    present = [name for name in OFFICIAL if (folder / name).is_file()]
    if not present:
        pytest.skip(f"no official PReNet checkpoint under {folder}")
    for name in present:
        state = _load(folder / name)  # legacy (pre-zip) pickles read with weights_only=True
        net = OFFICIAL[name]()
        net.load_state_dict(state, strict=True)
        assert list(net.state_dict()) == list(state), name


def test_plugin_hashes_match_the_recorded_sums(shared_weights):
    sums = dict(line.split()[::-1] for line in (shared_weights / "SHA256SUMS").read_text().splitlines() if line)
    checked = 0
    for cls in (PReNet, PReNetR, PRN, PRNR):
        for variant in cls.info.variants.values():
            for w in variant.weights:
                key = f"weights/{w.folder}/{w.filename}"
                if key in sums:
                    assert w.sha256 == sums[key], key
                    digest = hashlib.sha256((shared_weights / w.folder / w.filename).read_bytes()).hexdigest()
                    assert digest == w.sha256, key
                    checked += 1
    assert checked == 11  # every PReNet file of the shared weights is declared by a variant


def test_plugin_variants_and_missing_own_checkpoint(tmp_path, monkeypatch):
    assert PReNet.info.default_variant == "rain100h"
    assert set(PReNet.info.variants) == {"rain100h", "rain100l", "rain1400", "real", "ours"}
    assert set(PRNR.info.variants) == {"rain100h", "rain100l", "rain1400"}
    monkeypatch.setattr(PReNet, "shipped", {"ours": tmp_path / "absent.pt"})
    method = PReNet("ours")
    assert method.required_weights() == ()
    with pytest.raises(UnavailableError, match="absent.pt"):
        method.load(torch.device("cpu"))
    torch.save({"state_dict": nets.PReNet().state_dict()}, tmp_path / "absent.pt")
    method.load(torch.device("cpu"))
    assert isinstance(method.net, nets.PReNet)


def test_prenet_rain100l_derains_real_images(shared_data, shared_weights):
    pairs = rain100l_crops(shared_data)
    method = resolved(PReNet("rain100l"), shared_weights)
    method.load(torch.device("cpu"))
    rainy_psnr = mean_psnr(lambda b: b, pairs)
    derained_psnr = mean_psnr(method.derain, pairs)
    assert derained_psnr > rainy_psnr + 8.0, (rainy_psnr, derained_psnr)


def test_real_checkpoint_needs_the_lstm_after_units_architecture(shared_data, shared_weights):
    state = _load(shared_weights / "prenet" / "real_PReNet1.pth")
    pairs = rain100l_crops(shared_data)
    scores = {}
    for cls in (nets.PReNetReal, nets.PReNet):
        net = cls().eval()
        net.load_state_dict(state, strict=True)  # both accept the keys: only the output tells them apart
        with torch.no_grad():
            scores[cls.__name__] = mean_psnr(lambda b, net=net: net(b).clamp(0, 1), pairs)
    assert scores["PReNetReal"] > mean_psnr(lambda b: b, pairs) + 1.0, scores
    assert scores["PReNetReal"] > scores["PReNet"] + 5.0, scores
