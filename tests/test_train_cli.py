"""`bench train sapnet --synth-from DIR --iters 20` end to end on CPU, then resumed."""

import csv
import json

import numpy as np
import torch
from PIL import Image
from typer.testing import CliRunner

from bench.cli import app


def test_train_sapnet_cli_runs_and_resumes(tmp_path):
    clean = tmp_path / "clean"
    clean.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3)).astype(np.uint8)).save(clean / f"{i}.png")
    out = tmp_path / "run"
    args = ["train", "sapnet", "--synth-from", str(clean), "--patch", "24", "--batch", "2", "--device", "cpu",
            "--threads", "1", "--out", str(out)]
    runner = CliRunner()
    first = runner.invoke(app, [*args, "--iters", "20"])
    assert first.exit_code == 0, first.output
    sidecar = json.loads((out / "sapnet_final.json").read_text())
    assert sidecar["iterations"] == 20
    state = torch.load(out / "sapnet_final.pt", weights_only=True)
    assert sum(v.numel() for k, v in state.items() if "running" not in k and "num_batches" not in k) == 180_483

    second = runner.invoke(app, [*args, "--iters", "24", "--resume"])
    assert second.exit_code == 0, second.output
    assert json.loads((out / "sapnet_final.json").read_text())["iterations"] == 24
    with open(out / "log.csv") as handle:
        iterations = [int(row["iteration"]) for row in csv.DictReader(handle)]
    assert iterations == sorted(iterations) and iterations[-1] == 24 and max(iterations[:-1]) <= 20

    bad = runner.invoke(app, ["train", "sapnet", "--iters", "2"])
    assert bad.exit_code == 2 and "exactly one of --data" in bad.output
