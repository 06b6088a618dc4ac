"""Bad input never stops a run: each failure is stored and shown with the file and the reason."""

from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from bench.cli import app
from bench.images import write_png16
from bench.results.store import ResultsStore

PLUGINS = '''
import torch
from bench.methods.api import DerainMethod, MethodInfo

class Raises(DerainMethod):
    info = MethodInfo(name="raises", paper="test", year=None, kind="classical")
    def derain(self, batch):
        raise RuntimeError("boom inside the plugin")

class ReturnsNaN(DerainMethod):
    info = MethodInfo(name="returns_nan", paper="test", year=None, kind="classical")
    def derain(self, batch):
        return batch * float("nan")

class WrongShape(DerainMethod):
    info = MethodInfo(name="wrong_shape", paper="test", year=None, kind="classical")
    def derain(self, batch):
        return batch[:, :, :-1, :]
'''


def _save(path: Path, array: np.ndarray, mode: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)


def _make_project(tmp: Path) -> Path:
    rng = np.random.default_rng(0)
    rgb = lambda h=24, w=32: rng.integers(0, 256, (h, w, 3)).astype(np.uint8)  # noqa: E731
    data = tmp / "data" / "toy"
    for stem in ("good1", "good2", "corrupt", "truncated", "nopartner", "mismatch", "sixteen", "grey", "rgba"):
        if stem not in ("sixteen", "grey", "rgba", "corrupt", "truncated"):
            _save(data / "input" / f"{stem}.png", rgb())
    (data / "input" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\ngarbage")
    _save(data / "input" / "truncated.jpg", rgb(64, 64))
    raw = (data / "input" / "truncated.jpg").read_bytes()
    (data / "input" / "truncated.jpg").write_bytes(raw[: len(raw) // 2])
    write_png16(data / "input" / "sixteen.png", rng.random((24, 32, 3)))
    _save(data / "input" / "grey.png", rng.integers(0, 256, (24, 32)).astype(np.uint8), "L")
    _save(data / "input" / "rgba.png", rng.integers(0, 256, (24, 32, 4)).astype(np.uint8), "RGBA")
    for stem in ("good1", "good2", "corrupt", "truncated", "sixteen", "grey", "rgba"):
        _save(data / "target" / f"{stem}.png", rgb())
    _save(data / "target" / "mismatch.png", rgb(20, 30))
    cards = tmp / "cards"
    cards.mkdir()
    (cards / "toy.toml").write_text('name = "toy"\ntitle = "Toy"\ncategory = "synthetic-paired"\n'
                                    'expected_count = 9\nlayouts = ["input-target"]\n')
    (tmp / "plugins.py").write_text(PLUGINS)
    config = tmp / "bench.toml"
    config.write_text('[paths]\ndata_root = "data"\nweights_dir = "weights"\noutput_dir = "out"\n'
                      'cards_dir = "cards"\n[plugins]\nfiles = ["plugins.py"]\n')
    return config


def test_bad_inputs_and_broken_plugins_are_stored_as_failures(tmp_path):
    config = _make_project(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["run", "--config", str(config), "--methods", "rainy,raises,returns_nan,wrong_shape",
                                 "--datasets", "toy", "--no-progress"])
    assert result.exit_code == 0, result.output
    with ResultsStore(tmp_path / "out" / "results.sqlite") as store:
        results, failures = store.results(), store.failures()
    rainy_ok = set(results[(results.method == "rainy") & (results.metric == "psnr")].image_id)
    assert rainy_ok == {"good1", "good2", "sixteen", "grey", "rgba"}
    rainy_fail = failures[failures.method == "rainy"].set_index("image_id")
    assert set(rainy_fail.index) == {"corrupt", "truncated", "nopartner", "mismatch"}
    assert rainy_fail.loc["corrupt", "file"].endswith("corrupt.png")
    assert "corrupt or truncated" in rainy_fail.loc["truncated", "reason"]
    assert "missing target" in rainy_fail.loc["nopartner", "reason"]
    assert rainy_fail.loc["nopartner", "file"].endswith("target/nopartner.png")
    assert "differs" in rainy_fail.loc["mismatch", "reason"]
    reasons = failures[failures.image_id == "good1"].set_index("method")["reason"]
    assert "boom inside the plugin" in reasons["raises"]
    assert "NaN" in reasons["returns_nan"]
    assert "returned (1, 3, 23, 32)" in reasons["wrong_shape"]

    report = runner.invoke(app, ["report", "--config", str(config), "--format", "md", "--out", "-"])
    assert report.exit_code == 0, report.output
    assert "## Failures" in report.output and "corrupt.png" in report.output and "boom inside the plugin" in report.output


def test_unknown_names_fail_early_with_a_suggestion(tmp_path):
    config = _make_project(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["run", "--config", str(config), "--methods", "rainyy", "--datasets", "toy"])
    assert result.exit_code == 2
    assert "unknown method 'rainyy'" in result.output and "Did you mean 'rainy'" in result.output
    result = runner.invoke(app, ["run", "--config", str(config), "--methods", "rainy", "--datasets", "toyy"])
    assert result.exit_code == 2 and "Did you mean toy" in result.output
