"""End to end through the CLI: the spec asked for is the spec reported, the offline default run ranks both
shipped learned methods, and a `--limit 3` run is compared with Rainy on the same 3 images."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from typer.testing import CliRunner

from bench.cli import app
from bench.cli.run_cmd import resolve_method_specs

ENV = {"COLUMNS": "200", "BENCH_NO_DOWNLOAD": "1"}


def _run(args: list[str], out: Path, *extra: str):
    result = CliRunner().invoke(app, ["run", *args, "--out", str(out), "--no-progress", "--efficiency-size", "off",
                                      *extra], env=ENV)
    assert result.exit_code == 0, result.output
    return result


def _report(out: Path, fmt: str, *extra: str) -> str:
    result = CliRunner().invoke(app, ["report", "--format", fmt, "--results", str(out), "--out", "-", *extra], env=ENV)
    assert result.exit_code == 0, result.output
    return result.stdout


def _csv(out: Path, *extra: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(_report(out, "csv", *extra))))


def test_the_spec_asked_for_is_the_spec_reported(shared_weights, tmp_path):
    out = tmp_path / "out"
    _run(["--methods", "prenet:rain100l,prenet", "--datasets", "embedded-light", "--limit", "2",
          "--weights-dir", str(shared_weights)], out)
    rows = _csv(out)
    assert {r["method"] for r in rows} == {"prenet:rain100l", "prenet:rain100h"}
    assert {r["label"] for r in rows} == {"PReNet (rain100l)", "PReNet (rain100h)"}
    assert _csv(out, "--methods", "prenet") == _csv(out, "--methods", "prenet:rain100h")  # same rows either way
    assert "| PReNet (rain100l) | `prenet:rain100l` |" in _report(out, "md")


def test_methods_all_runs_every_variant_shipped_with_the_package():
    specs = resolve_method_specs("all")
    assert {"sapnet:ours", "prenet:ours", "rainy", "prenet:rain100h"} <= set(specs)
    assert "sapnet" not in specs and "prenet" not in specs  # canonical specs only
    assert resolve_method_specs("prenet,prenet:rain100h,sapnet") == ["prenet:rain100h", "sapnet:ours"]


def test_offline_default_run_ranks_sapnet_and_prenet_ours_above_a_short_not_evaluated_table(tmp_path):
    out = tmp_path / "out"
    _run(["--methods", "all", "--datasets", "embedded-heavy", "--limit", "2", "--weights-dir", str(tmp_path / "w")], out)
    md = _report(out, "md")
    table = md.split("## Full-reference quality")[1].split("\n## ")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "`" in line]
    ranked = {line.split(" | ")[0].strip("| ") for line in rows if "**" in line or "<u>" in line}
    assert {"SAPNet (ours)", "PReNet (ours)"} <= ranked
    absent = md.split("## Not evaluated")[1].split("\n## ")[0]
    absent_rows = [line for line in absent.splitlines() if line.startswith("| ") and not line.startswith("| What")]
    assert 0 < len(absent_rows) < len(rows)
    assert any("weights missing" in line and "bench info" in line for line in absent_rows)


def test_a_limited_run_is_compared_with_rainy_on_the_images_they_share(tmp_path):
    out = tmp_path / "out"
    _run(["--methods", "rainy", "--datasets", "embedded-light"], out)
    _run(["--methods", "sapnet", "--datasets", "embedded-light", "--limit", "3"], out)
    every = {r["method"]: r for r in _csv(out, "--images", "all") if r["metric"] == "psnr"}
    shared = {r["method"]: r for r in _csv(out) if r["metric"] == "psnr"}
    assert (every["rainy"]["n"], shared["rainy"]["common_n"], shared["sapnet:ours"]["n"]) == ("16", "3", "3")
    assert float(shared["rainy"]["mean"]) != float(every["rainy"]["mean"])  # Rainy over the 3 shared images
    md = _report(out, "md")
    rainy_row = next(line for line in md.splitlines() if line.startswith("| Rainy |"))
    assert f"{float(shared['rainy']['mean']):.2f}" in rainy_row
    assert "embedded-light 3 (of 16 measured)" in md
    assert re.search(r"sapnet:ours was measured on 3 of the 16 images of embedded-light", md)
