"""The trainer: end-to-end runs on CPU, exact resume, learning on a fixed batch, data layouts."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.errors import BadInputError
from bench.train import TrainConfig, train
from bench.train.data import SynthRainImages, find_pairs
from bench.train.model_card import render_model_card
from bench.train.schedule import StepSchedule
from bench.train.trainer import build_loss, build_network, train_step

torch.set_num_threads(1)  # the machine is shared: one thread is faster than two under load


@pytest.fixture(autouse=True)
def _empty_torch_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


@pytest.fixture
def clean_folder(tmp_path: Path) -> Path:
    import skimage.data

    folder = tmp_path / "clean"
    folder.mkdir()
    for name in ("chelsea", "coffee", "astronaut"):
        Image.fromarray(getattr(skimage.data, name)()[:72, :80]).save(folder / f"{name}.png")
    return folder


def _config(tmp_path: Path, clean: Path, **kwargs) -> TrainConfig:
    base = {"out_dir": tmp_path / "run", "synth_from": clean, "patch": 32, "batch": 2, "progress": False, "seed": 3}
    base.update(kwargs)
    return TrainConfig(**base)


def _read_log(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_sapnet_trains_end_to_end_on_cpu(tmp_path: Path, clean_folder: Path) -> None:
    result = train(_config(tmp_path, clean_folder, model="sapnet", iters=20, log_every=5, checkpoint_every=10,
                           stages=2, val_dir=None))
    assert result.iterations == 20
    state = torch.load(result.final_model, weights_only=True)
    net = build_network(TrainConfig(model="sapnet", stages=2))
    net.load_state_dict(state, strict=True)
    assert "conv_i.0.weight" in state  # official flat naming, loadable by the sapnet plugin
    sidecar = json.loads(result.sidecar.read_text())
    assert sidecar["iterations"] == 20 and sidecar["wall_time_s"] > 0
    assert set(sidecar["backbones"]) == {"seg", "pcl", "lpisl"}
    assert set(sidecar["final_losses"]) == {"loss", "ssim", "seg", "pcl", "lpisl"}
    assert sidecar["config"]["patch"] == 32
    rows = _read_log(result.log)
    assert [int(r["iteration"]) for r in rows] == [5, 10, 15, 20]
    assert all(r[k] for r in rows for k in ("ssim", "seg", "pcl", "lpisl"))


def test_resume_continues_from_the_checkpoint_exactly(tmp_path: Path, clean_folder: Path) -> None:
    common = {"model": "prenet", "stages": 2, "log_every": 1, "checkpoint_every": 3, "milestones": ()}
    straight = train(_config(tmp_path / "a", clean_folder, iters=6, **common))
    first = train(_config(tmp_path / "b", clean_folder, iters=3, **common))
    ckpt = torch.load(first.final_model.parent / "checkpoint.pt", weights_only=True)
    assert ckpt["iteration"] == 3
    resumed = train(_config(tmp_path / "b", clean_folder, iters=6, resume=True, **common))
    assert resumed.iterations == 6
    ckpt = torch.load(resumed.final_model.parent / "checkpoint.pt", weights_only=True)
    # Adam's step counter continued from 3: the optimizer state was restored, not rebuilt
    assert all(float(s["step"]) == 6 for s in ckpt["optimizer"]["state"].values())
    assert [int(r["iteration"]) for r in _read_log(resumed.log)] == [1, 2, 3, 4, 5, 6]
    a = torch.load(straight.final_model, weights_only=True)
    b = torch.load(resumed.final_model, weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)  # same weights as an uninterrupted run


def test_init_from_starts_from_given_weights_and_records_earlier_stages(tmp_path: Path, clean_folder: Path) -> None:
    common = {"model": "prenet", "stages": 2, "log_every": 1, "checkpoint_every": 100}
    first = train(_config(tmp_path / "a", clean_folder, iters=3, **common))
    # lr 0: Adam leaves the weights where they started, so the result equals the weights it was initialised from
    second = train(_config(tmp_path / "b", clean_folder, iters=2, lr=0.0, init_from=first.final_model, **common))
    a = torch.load(first.final_model, weights_only=True)
    b = torch.load(second.final_model, weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sidecar = json.loads(second.sidecar.read_text())
    assert [stage["iterations"] for stage in sidecar["earlier_stages"]] == [3]
    assert sidecar["iterations"] == 2 and sidecar["total_iterations"] == 5
    assert sidecar["config"]["init_from"] == str(first.final_model)
    third = train(_config(tmp_path / "c", clean_folder, iters=1, init_from=second.final_model, **common))
    assert json.loads(third.sidecar.read_text())["total_iterations"] == 6  # stages chain
    # an interrupted fine-tuning run, resumed, still knows the stages behind its initial weights
    train(_config(tmp_path / "d", clean_folder, iters=1, init_from=first.final_model, **common))
    resumed = train(_config(tmp_path / "d", clean_folder, iters=2, init_from=first.final_model, resume=True,
                            **common))
    assert json.loads(resumed.sidecar.read_text())["total_iterations"] == 5
    card = render_model_card({"prenet:test": third.sidecar}, {"prenet:test": ["cmd one", "cmd two", "cmd three"]},
                             "three photographs")
    assert "- iterations: 6 in 3 stage(s)" in card
    assert "  1. 3 iterations, from a fresh initialisation" in card
    assert "  2. 2 iterations, fine-tuned from the previous stage" in card and "Adam lr 0," in card
    assert "  3. 1 iterations, fine-tuned" in card and "cmd one\ncmd two\ncmd three" in card


def test_init_from_rejects_weights_of_another_network(tmp_path: Path, clean_folder: Path) -> None:
    sapnet = tmp_path / "sapnet.pt"
    torch.save(build_network(TrainConfig(model="sapnet", stages=2)).state_dict(), sapnet)
    with pytest.raises(BadInputError, match="sapnet.pt does not fit PReNet"):
        train(_config(tmp_path, clean_folder, model="prenet", stages=2, iters=1, init_from=sapnet))


def test_loss_goes_down_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    config = TrainConfig(model="sapnet", stages=2)
    net, loss_fn = build_network(config), build_loss(config)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(5)
    clean = torch.rand(2, 3, 32, 32, generator=g)
    rainy = (clean + 0.3 * (torch.rand(2, 1, 32, 32, generator=g) > 0.9)).clamp(0, 1)
    losses = [train_step(net, loss_fn, optimizer, rainy, clean)[0] for _ in range(12)]
    assert losses[-1] < losses[0] - 0.02
    assert min(losses[-3:]) < min(losses[:3])


def test_step_schedule() -> None:
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = StepSchedule(optimizer, 1e-4)
    assert [schedule.update(p) for p in (0.0, 0.29, 0.3, 0.6, 0.85)] == pytest.approx([1e-4, 1e-4, 2e-5, 4e-6, 8e-7])
    assert optimizer.param_groups[0]["lr"] == pytest.approx(8e-7)


def test_paired_layouts(tmp_path: Path) -> None:
    image = Image.fromarray(np.zeros((8, 8, 3), np.uint8))
    for sub in ("input", "target"):
        (tmp_path / "a" / sub).mkdir(parents=True)
        for stem in ("x1", "x2"):
            image.save(tmp_path / "a" / sub / f"{stem}.png")
    assert [(r.name, c.parent.name) for r, c in find_pairs(tmp_path / "a")] == [("x1.png", "target"), ("x2.png", "target")]
    (tmp_path / "b").mkdir()
    for name in ("rain-001.png", "norain-001.png", "rain-002.png"):
        image.save(tmp_path / "b" / name)
    assert [(r.name, c.name) for r, c in find_pairs(tmp_path / "b")] == [("rain-001.png", "norain-001.png")]
    (tmp_path / "c").mkdir()
    with pytest.raises(BadInputError, match="0 pairs found"):
        find_pairs(tmp_path / "c")


def test_mixed_rain_presets_draw_each_preset(clean_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.data.synth

    drawn: list[str] = []
    real = bench.data.synth.synthesize_rain
    monkeypatch.setattr(bench.data.synth, "synthesize_rain",
                        lambda clean, preset, rng: drawn.append(preset) or real(clean, preset, rng))
    source = SynthRainImages(clean_folder, "light,heavy")
    rng = np.random.default_rng(0)
    for _ in range(40):
        rainy, clean = source.patch(0, 32, rng)
        assert rainy.shape == clean.shape == (32, 32, 3)
    assert set(drawn) == {"light", "heavy"} and 10 < drawn.count("heavy") < 30
    with pytest.raises(BadInputError, match="unknown storm; choose from light, heavy"):
        SynthRainImages(clean_folder, "light,storm")
