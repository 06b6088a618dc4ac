"""Foundation acceptance: dataset cards listed with availability; Rainy on Rain100L reads 26.90 dB."""

import csv
import io

from typer.testing import CliRunner

from bench.cli import app

CARDS = ["rain12", "rain100l", "rain100h", "rain800", "sirr", "moss", "coco150", "cityscape150",
         "embedded-light", "embedded-heavy"]


def test_list_datasets_shows_every_card_with_availability(tmp_path):
    result = CliRunner().invoke(app, ["list", "datasets", "--data-root", str(tmp_path)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    for name in CARDS:
        assert name in result.output
    assert "data missing" in result.output and "bench datasets fetch" in result.output
    assert "generated on first use" in result.output


def test_list_profiles_and_metrics():
    runner = CliRunner()
    profiles = runner.invoke(app, ["list", "profiles"], env={"COLUMNS": "300"})
    assert profiles.exit_code == 0 and all(p in profiles.output for p in ("matlab-y", "prenet-y", "basicsr-y", "rgb"))
    metrics = runner.invoke(app, ["list", "metrics"], env={"COLUMNS": "300"})
    assert metrics.exit_code == 0 and "psnr" in metrics.output and "ms_per_image" in metrics.output


def test_rainy_on_rain100l_reads_the_published_input_psnr(shared_data, tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", "--methods", "rainy", "--datasets", "rain100l", "--data-root", str(shared_data),
                                 "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    report = runner.invoke(app, ["report", "--format", "csv", "--results", str(out), "--out", "-"])
    rows = list(csv.DictReader(io.StringIO(report.stdout)))
    assert list(rows[0]) == ["method", "label", "dataset", "metric", "profile", "n", "common_n", "mean", "ci_low", "ci_high"]
    psnr = [r for r in rows if r["method"] == "rainy" and r["dataset"] == "rain100l" and r["metric"] == "psnr"]
    assert len(psnr) == 1 and psnr[0]["profile"] == "matlab-y" and int(psnr[0]["n"]) == 100
    assert abs(float(psnr[0]["mean"]) - 26.90) <= 0.05
    assert float(psnr[0]["ci_low"]) < float(psnr[0]["mean"]) < float(psnr[0]["ci_high"])
