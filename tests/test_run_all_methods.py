"""`bench run --methods all` runs every available method and lists the others with the reason."""

import sqlite3

from typer.testing import CliRunner

from bench.cli import app

EXPECTED_UNAVAILABLE = {"mprnet", "mspfn", "effderain", "syn2real", "moss"}  # weights are cloud-drive downloads


def test_all_methods_on_one_embedded_image(shared_weights, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", "--methods", "all", "--datasets", "embedded-light", "--limit", "1",
                                      "--weights-dir", str(shared_weights), "--out", str(out), "--no-progress",
                                      "--efficiency-size", "64x48"],
                                env={"COLUMNS": "300", "BENCH_NO_DOWNLOAD": "1"})
    assert result.exit_code == 0, result.output
    with sqlite3.connect(out / "results.sqlite") as con:
        ran = {r[0] for r in con.execute("SELECT DISTINCT method FROM results WHERE metric='psnr'")}
        unavailable = dict(con.execute("SELECT method, reason FROM unavailable WHERE dataset='*'").fetchall())
    assert {"rainy", "prenet", "prenet_r", "prn", "prn_r", "ddn", "rescan"} <= ran
    assert EXPECTED_UNAVAILABLE <= set(unavailable)
    for name in EXPECTED_UNAVAILABLE:
        assert "weights file" in unavailable[name] and "put it in" in unavailable[name]
        assert name in result.output  # listed, not dropped
    with sqlite3.connect(out / "results.sqlite") as con:
        efficiency = {r[0] for r in con.execute("SELECT DISTINCT method FROM results WHERE metric='params' "
                                                "AND profile='cpu@64x48'")}
    assert ran <= efficiency  # every method that ran has efficiency cells
