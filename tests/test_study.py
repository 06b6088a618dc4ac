"""`bench train study` end to end at a tiny size: eight models trained, evaluated with `bench run`, and the
Table 2 layout computed from the results store; a rerun resumes instead of retraining."""

import csv
import json
import sqlite3
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from bench.cli import app
from bench.methods.weights import weights_hash
from bench.train.study import ablation_steps


def _stored_mean(db: Path, variant: str, weights: str, metric: str) -> float:
    with sqlite3.connect(db) as con:
        (value,) = con.execute("SELECT AVG(value) FROM results WHERE method='sapnet' AND variant=? AND weights_hash=? "
                               "AND dataset='embedded-heavy' AND metric=? AND profile='prenet-y'",
                               (variant, weights, metric)).fetchone()
    return value


def test_tiny_study_trains_evaluates_and_reports_table_2(tmp_path):
    clean = tmp_path / "clean"
    clean.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3)).astype(np.uint8)).save(clean / f"{i}.png")
    out = tmp_path / "study"
    args = ["train", "study", "--synth-from", str(clean), "--recipe", "tiny", "--out", str(out), "--device", "cpu",
            "--main-datasets", "embedded-heavy", "--ablation-datasets", "embedded-heavy", "--limit", "2",
            "--no-progress"]
    runner = CliRunner()
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output

    # eight models with the same seed and budget within each part
    _, steps = ablation_steps()
    assert [s.name for s in steps] == ["M1", "M2", "M3", "M4", "M5", "M6"]
    sidecars = {p.parent.name: json.loads(p.read_text()) for p in out.glob("runs/*/*_final.json")}
    assert set(sidecars) == {"main-sapnet", "main-prenet", *(f"ablation-{s.name}" for s in steps)}
    assert {s["config"]["seed"] for s in sidecars.values()} == {0}
    assert {sidecars[f"ablation-{s.name}"]["iterations"] for s in steps} == {1}
    m1, m6 = sidecars["ablation-M1"]["config"], sidecars["ablation-M6"]["config"]
    assert (m1["use_dilation"], m1["w_seg"], m1["w_pcl"], m1["w_lpisl"], m1["milestones"]) == (False, 0, 0, 0, [])
    assert (m6["use_dilation"], m6["w_seg"], m6["w_pcl"], m6["w_lpisl"]) == (True, 0.1, 0.1, 0.1)
    assert m6["milestones"] == [0.3, 0.5, 0.8]
    assert sidecars["main-prenet"]["config"]["model"] == "prenet"

    # the Table 2 layout, its cells being the stored means
    report = (out / "study.md").read_text()
    assert "## Ablation (the paper's Table 2 layout)" in report
    with open(out / "study.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    ablation = {r["Model"]: r for r in rows if r["table"] == "ablation"}
    assert list(ablation) == ["M1", "M2", "M3", "M4", "M5", "M6"]
    assert ablation["M1"]["paper Rain100H PSNR / SSIM"] == "27.94 / 0.882"
    assert ablation["M4"]["Dilation"] == "✓" and not ablation["M3"]["Dilation"]
    db = out / "eval" / "results.sqlite"
    for step in ("M1", "M6"):
        model = out / "runs" / f"ablation-{step}" / "sapnet_final.pt"
        digest = weights_hash({model.name: model})
        psnr, ssim = (_stored_mean(db, f"study-{step.lower()}", digest, m) for m in ("psnr", "ssim"))
        assert ablation[step]["embedded-heavy PSNR / SSIM"] == f"{psnr:.2f} / {ssim:.4f}"
    directions = [r for r in rows if r["table"] == "directions"]
    assert len(directions) == 5 and {r["same direction"] for r in directions} <= {"yes", "no"}
    comparison = {r["Method"]: r for r in rows if r["table"] == "comparison"}
    assert set(comparison) == {"Rainy", "SAPNet (study)", "PReNet (study)"}
    assert "\\begin{tabular}" in (out / "study.tex").read_text()
    assert "## Training data against the evaluation sets" in report  # the disjointness check ran first
    assert json.loads((out / "disjointness.json").read_text())

    # the same command again resumes: nothing is retrained, nothing re-measured
    with sqlite3.connect(db) as con:
        before = con.execute("SELECT COUNT(*), MAX(created) FROM results").fetchone()
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert again.output.count("finished earlier") == 8
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*), MAX(created) FROM results").fetchone() == before

    # another budget in the same folder is refused with the fix
    other = runner.invoke(app, [*args, "--ablation-iters", "3"])
    assert other.exit_code != 0 and "other settings" in other.output
