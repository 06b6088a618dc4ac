"""The checkpoints we trained and ship: SAPNet (ours) clears 30.5 dB on Rain100L (30.32 before the study's stage) and
beats PReNet trained with the same commands, data and budget (prenet:ours), on Rain100L and on the embedded heavy
set (profile prenet-y)."""

import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from bench.cli import app


def _mean_psnr(tmp_path: Path, datasets: str, data_root: Path | None = None) -> dict[tuple[str, str], float]:
    """Run rainy, sapnet and prenet:ours on ``datasets``; mean prenet-y PSNR (dB) per (method spec, dataset)."""
    out = tmp_path / "out"
    args = ["run", "--methods", "rainy,sapnet,prenet:ours", "--datasets", datasets, "--profile", "prenet-y",
            "--out", str(out), "--no-progress", "--efficiency-size", "off"]
    if data_root is not None:
        args += ["--data-root", str(data_root)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "300", "BENCH_NO_DOWNLOAD": "1"})
    assert result.exit_code == 0, result.output
    with sqlite3.connect(out / "results.sqlite") as con:
        rows = con.execute("SELECT method, variant, dataset, AVG(value), COUNT(*) FROM results "
                           "WHERE metric='psnr' AND profile='prenet-y' GROUP BY method, variant, dataset").fetchall()
    means = {}
    for method, variant, dataset, mean, count in rows:
        spec = method if method in ("rainy", "sapnet") else f"{method}:{variant}"
        means[(spec, dataset)] = mean
        assert count == (100 if dataset == "rain100l" else 16)
    return means


def test_sapnet_ours_beats_prenet_ours_on_the_embedded_heavy_set(tmp_path):
    psnr = _mean_psnr(tmp_path, "embedded-heavy")
    assert psnr[("sapnet", "embedded-heavy")] > psnr[("prenet:ours", "embedded-heavy")] > psnr[("rainy", "embedded-heavy")] + 5


def test_sapnet_ours_clears_30_5_db_on_rain100l_and_beats_prenet_ours(shared_data, tmp_path):
    psnr = _mean_psnr(tmp_path, "rain100l", shared_data)
    assert psnr[("sapnet", "rain100l")] >= 30.5
    assert psnr[("sapnet", "rain100l")] > psnr[("prenet:ours", "rain100l")]
