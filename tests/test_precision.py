"""--precision: every stored figure records the precision its network ran in; bf16 figures sit beside fp32 ones
(their own outputs, their own rows), the report marks them and says when a table mixes precisions; fp16 needs
CUDA; a store written before precisions existed opens with every old figure fp32."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from bench.cli import app
from bench.results.store import ResultKey, ResultsStore

CONV_METHOD = '''
import torch
from bench.methods.api import DerainMethod, MethodInfo


class Smooth(DerainMethod):
    """A learned-kind 3x3 smoothing conv (so that --precision applies to it)."""
    info = MethodInfo(name="smooth", paper="test", year=None, kind="learned")

    def derain(self, batch):
        weight = torch.full((3, 1, 3, 3), 1 / 9)
        return torch.nn.functional.conv2d(batch, weight, padding=1, groups=3).clamp(0, 1)
'''
ENV = {"COLUMNS": "300"}


def _project(tmp: Path) -> Path:
    rng = np.random.default_rng(1)
    for i in range(3):
        for role in ("input", "target"):
            path = tmp / "data" / "toy" / role / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (24, 32, 3)).astype(np.uint8)).save(path)
    (tmp / "cards").mkdir()
    (tmp / "cards" / "toy.toml").write_text('name = "toy"\ntitle = "Toy"\ncategory = "synthetic-paired"\n'
                                            'expected_count = 3\nlayouts = ["input-target"]\n')
    (tmp / "smooth.py").write_text(CONV_METHOD)
    (tmp / "bench.toml").write_text('[paths]\ndata_root = "data"\ncards_dir = "cards"\noutput_dir = "out"\n'
                                    '[plugins]\nfiles = ["smooth.py"]\n[run]\nefficiency_size = "off"\ndevice = "cpu"\n')
    return tmp / "bench.toml"


def _run(config: Path, *extra: str):
    return CliRunner().invoke(app, ["run", "--config", str(config), "--methods", "rainy,smooth", "--datasets", "toy",
                                    "--no-progress", *extra], env=ENV)


def test_bf16_figures_are_recorded_beside_fp32_and_marked_in_the_report(tmp_path):
    config = _project(tmp_path)
    bf16 = _run(config, "--precision", "bf16")
    assert bf16.exit_code == 0, bf16.output
    fp32 = _run(config)
    assert fp32.exit_code == 0, fp32.output
    assert "3 image(s) measured, 3 already finished" in fp32.output  # smooth again in fp32; rainy has no network
    db = tmp_path / "out" / "results.sqlite"
    with sqlite3.connect(db) as con:
        rows = set(con.execute("SELECT method, precision, COUNT(DISTINCT image_id) FROM results WHERE metric='psnr' "
                               "GROUP BY method, precision"))
    assert rows == {("rainy", "fp32", 3), ("smooth", "bf16", 3), ("smooth", "fp32", 3)}
    outputs = tmp_path / "out" / "outputs" / "smooth" / "default"
    assert sorted(p.name.partition("@")[2] for p in outputs.iterdir()) == ["", "bf16"]

    report = CliRunner().invoke(app, ["report", "--format", "md", "--results", str(tmp_path / "out"), "--out", "-"],
                                env=ENV)
    assert report.exit_code == 0, report.output
    assert "smooth [bf16]" in report.stdout and "this table mixes precisions" in report.stdout
    csv = CliRunner().invoke(app, ["report", "--format", "csv", "--results", str(tmp_path / "out"), "--out", "-"],
                             env=ENV)
    assert "smooth@bf16,smooth [bf16],toy,psnr" in csv.stdout and "\nsmooth,smooth,toy,psnr" in csv.stdout


def test_fp16_needs_cuda_and_an_unknown_precision_is_named(tmp_path):
    config = _project(tmp_path)
    fp16 = _run(config, "--precision", "fp16")
    assert fp16.exit_code != 0 and "--precision fp16 needs a CUDA device" in fp16.output
    typo = _run(config, "--precision", "bf61")
    assert typo.exit_code != 0 and "choose one of fp32, bf16, fp16" in typo.output


def test_a_store_written_before_precisions_opens_with_every_figure_fp32(tmp_path):
    db = tmp_path / "results.sqlite"
    with sqlite3.connect(db) as con:  # the results table as earlier versions created it
        con.execute("CREATE TABLE results (method TEXT NOT NULL, variant TEXT NOT NULL, weights_hash TEXT NOT NULL, "
                    "dataset TEXT NOT NULL, image_id TEXT NOT NULL, metric TEXT NOT NULL, profile TEXT NOT NULL, "
                    "value REAL, implementation TEXT, run_id TEXT, created REAL, "
                    "PRIMARY KEY (method, variant, weights_hash, dataset, image_id, metric, profile))")
        con.execute("INSERT INTO results VALUES ('m','v','h','d','1','psnr','matlab-y',30.5,'bench','r',1.0)")
    with ResultsStore(db) as store:
        assert store.results()[["value", "precision"]].values.tolist() == [[30.5, "fp32"]]
        assert store.done_images(ResultKey("m", "v", "h", "d")) == {"1": {("psnr", "matlab-y")}}
        assert store.done_images(ResultKey("m", "v", "h", "d", "bf16")) == {}
        store.put_image(ResultKey("m", "v", "h", "d", "bf16"), "1", [("psnr", "matlab-y", 30.4, "bench")], "r2")
        assert sorted(store.results()["precision"]) == ["bf16", "fp32"]
