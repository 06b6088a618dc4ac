"""A third-party distribution with a `bench.methods` entry point appears and runs without any edit here."""

import csv as csv_module
import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PYPROJECT = """
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "bench-demo-plugin"
version = "0.0.1"

[project.entry-points."bench.methods"]
brighten = "bench_demo_plugin:Brighten"
"""

MODULE = '''
from bench.methods.api import DerainMethod, MethodInfo


class Brighten(DerainMethod):
    """Adds 1/255 to every pixel: a throw-away third-party method."""

    info = MethodInfo(name="brighten", paper="Demo et al. 2099", year=2099, kind="classical",
                      description="third-party demo plugin")

    def derain(self, batch):
        return (batch + 1 / 255).clamp(0, 1)
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("plugin_src")
    (src / "pyproject.toml").write_text(PYPROJECT)
    (src / "bench_demo_plugin.py").write_text(textwrap.dedent(MODULE))
    site = tmp_path_factory.mktemp("plugin_site")
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
           "--no-index", "--target", str(site), str(src)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return site


def _bench(args: list[str], site: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "250"}
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, env=env, cwd=cwd)


def test_installed_plugin_is_listed_and_runs(plugin_site, tmp_path):
    listed = _bench(["list", "methods"], plugin_site, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "brighten" in listed.stdout
    info = _bench(["info", "brighten"], plugin_site, tmp_path)
    assert info.returncode == 0 and "Demo et al. 2099" in info.stdout

    out = tmp_path / "results"
    ran = _bench(["run", "--methods", "brighten,rainy", "--datasets", "embedded-light", "--limit", "2",
                  "--out", str(out), "--no-progress"], plugin_site, tmp_path)
    assert ran.returncode == 0, ran.stderr
    csv = _bench(["report", "--format", "csv", "--results", str(out), "--out", "-"], plugin_site, tmp_path)
    rows = list(csv_module.DictReader(io.StringIO(csv.stdout)))
    psnr = {r["method"]: float(r["mean"]) for r in rows if r["dataset"] == "embedded-light" and r["metric"] == "psnr"}
    assert set(psnr) == {"brighten", "rainy"}
    assert psnr["brighten"] != psnr["rainy"]  # the plugin really ran on the images
