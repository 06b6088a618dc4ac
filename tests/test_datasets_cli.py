"""`bench datasets synth` and `bench datasets verify` on folders the test makes."""

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from bench.cli import app
from bench.images import read_image


def test_synth_then_verify_a_clean_copy_and_a_broken_one(tmp_path):
    rng = np.random.default_rng(0)
    clean = tmp_path / "clean"
    clean.mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3)).astype(np.uint8)).save(clean / f"img{i}.png")
    data = tmp_path / "data"
    runner = CliRunner()
    made = runner.invoke(app, ["datasets", "synth", "--from", str(clean), "--preset", "heavy", "--seed", "7",
                               "--out", str(data / "toy")])
    assert made.exit_code == 0, made.output
    rainy = read_image(data / "toy" / "input" / "img0.png")
    target = read_image(data / "toy" / "target" / "img0.png")
    assert np.allclose(target, read_image(clean / "img0.png"))
    assert np.abs(rainy - target).mean() > 0.02  # rain was added

    again = tmp_path / "again"
    runner.invoke(app, ["datasets", "synth", "--from", str(clean), "--preset", "heavy", "--seed", "7", "--out", str(again)])
    assert (again / "input" / "img1.png").read_bytes() == (data / "toy" / "input" / "img1.png").read_bytes()

    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "toy.toml").write_text('name = "toy"\ntitle = "Toy"\ncategory = "synthetic-paired"\n'
                                    'expected_count = 3\nlayouts = ["input-target"]\n')
    config = tmp_path / "bench.toml"
    config.write_text('[paths]\ndata_root = "data"\ncards_dir = "cards"\n')
    ok = runner.invoke(app, ["datasets", "verify", "toy", "--config", str(config)])
    assert ok.exit_code == 0 and "ok" in ok.output, ok.output

    (data / "toy" / "target" / "img2.png").unlink()
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(data / "toy" / "target" / "img1.png")
    (data / "toy" / "input" / "img0.png").write_bytes(b"broken")
    bad = runner.invoke(app, ["datasets", "verify", "toy", "--config", str(config)], env={"COLUMNS": "300"})
    assert bad.exit_code == 1
    assert "img0.png: cannot decode" in bad.output
    assert "missing target" in bad.output and "img2.png" in bad.output
    assert "size 64x48 differs from target" in bad.output
