"""The local pipeline (inputs read ahead, batched network, outputs written and measured behind it) stores exactly
what one image at a time stores; batches give SAPNet's and PReNet's outputs bit for bit; a method that is not
batch-independent gets one image per call; kill -9 of a pipelined run loses nothing finished."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from typer.testing import CliRunner

from bench.cli import app
from bench.images import read_image, read_png16

TOY_METHODS = '''
import os, time
from bench.methods.api import DerainMethod, MethodInfo


def _log(batch):
    with open(os.environ["TOY_LOG"], "a") as log:
        log.write(f"{tuple(batch.shape)}\\n")


class Blur(DerainMethod):
    """A 3-tap blur, TOY_DELAY seconds per call, logging each batch's shape."""
    info = MethodInfo(name="blur", paper="test", year=None, kind="classical")

    def derain(self, batch):
        _log(batch)
        time.sleep(float(os.environ.get("TOY_DELAY", "0")))
        return (batch + batch.roll(1, -1) + batch.roll(-1, -1)) / 3


class WholeBatch(Blur):
    """The same blur, declared not batch-independent."""
    info = MethodInfo(name="wholebatch", paper="test", year=None, kind="classical")
    batch_independent = False
'''


def _project(tmp: Path, count: int = 10) -> Path:
    rng = np.random.default_rng(3)
    for i in range(count):
        for role in ("input", "target"):
            path = tmp / "data" / "toy" / role / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (40, 48, 3)).astype(np.uint8)).save(path)
    (tmp / "cards").mkdir()
    (tmp / "cards" / "toy.toml").write_text(f'name = "toy"\ntitle = "Toy"\ncategory = "synthetic-paired"\n'
                                            f'expected_count = {count}\nlayouts = ["input-target"]\n')
    (tmp / "toys.py").write_text(TOY_METHODS)
    (tmp / "bench.toml").write_text('[paths]\ndata_root = "data"\ncards_dir = "cards"\n[plugins]\nfiles = ["toys.py"]\n'
                                    '[run]\nefficiency_size = "off"\n')
    return tmp / "bench.toml"


def _figures(db: Path) -> pd.DataFrame:
    with sqlite3.connect(db) as con:
        df = pd.read_sql_query("SELECT method, variant, dataset, image_id, metric, profile, value, precision FROM results "
                               "WHERE metric IN ('psnr', 'ssim')", con)
    return df.sort_values(["method", "dataset", "image_id", "metric", "profile"]).reset_index(drop=True)


def _outputs(out: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(out)): read_png16(p) for p in sorted((out / "outputs").rglob("*.png"))}


# identity: pipelined vs one at a time, batch 4 vs 1 ---------------------------------------------------------
def test_pipelined_and_batched_runs_store_exactly_what_one_image_at_a_time_stores(shared_data, shared_weights, tmp_path):
    """SAPNet and PReNet on 4 Rain100L images resized to 128x96 (equal sizes, so batches form; much smaller
    images get other oneDNN kernels in a batch, see README)."""
    common = ["run", "--methods", "sapnet:official-2021-09-12,prenet:rain100l", "--datasets", "rain100l:128x96",
              "--limit", "4", "--data-root", str(shared_data), "--weights-dir", str(shared_weights),
              "--profile", "matlab-y,rgb", "--efficiency-size", "off", "--no-progress"]
    runs = {"one at a time": ["--pipeline-depth", "0", "--batch-size", "1"],
            "pipelined": ["--pipeline-depth", "2", "--batch-size", "1"],
            "batch 4": ["--pipeline-depth", "2", "--batch-size", "4"]}
    figures, outputs = {}, {}
    for name, flags in runs.items():
        out = tmp_path / name.replace(" ", "-")
        result = CliRunner().invoke(app, [*common, *flags, "--out", str(out)], env={"COLUMNS": "300"})
        assert result.exit_code == 0, result.output
        figures[name], outputs[name] = _figures(out / "results.sqlite"), _outputs(out)
    assert len(figures["one at a time"]) == 2 * 4 * 2 * 2 and len(outputs["one at a time"]) == 2 * 4
    # one at a time is each image alone through the network, as a 1x3xHxW view of its HxWx3 array (two per method)
    for path, image in list(outputs["one at a time"].items())[::2]:
        assert np.array_equal(image, _alone(path, shared_data, shared_weights)), path
    for name in ("pipelined", "batch 4"):
        pd.testing.assert_frame_equal(figures[name], figures["one at a time"], check_exact=True)
        assert outputs[name].keys() == outputs["one at a time"].keys()
        for path, image in outputs[name].items():
            assert np.array_equal(image, outputs["one at a time"][path]), f"{name}: {path} differs"


def _alone(path: str, data: Path, weights: Path) -> np.ndarray:
    """The output of outputs/<method>/<variant>/<hash>/<dataset>/<image>.png computed here, one image, no harness."""
    from bench.config import load_settings
    from bench.data.cards import open_dataset
    from bench.images import to_uint16
    from bench.methods.registry import create_method
    from bench.runner.image_work import _resize

    _, name, variant, _, dataset, image = Path(path).parts
    method = create_method(f"{name}:{variant}")
    method.weights = {w.filename: weights / w.folder / w.filename for w in method.required_weights()}
    method.load(torch.device("cpu"))
    opened = open_dataset(dataset, load_settings(data_root=data))
    sample = next(s for s in opened.samples if s.image_id == Path(image).stem)
    rainy = _resize(read_image(sample.input), opened.spec.resize)
    with torch.inference_mode():
        output = method.derain(torch.from_numpy(rainy).permute(2, 0, 1)[None])
    return to_uint16(output[0].permute(1, 2, 0).clamp(0, 1).numpy())


def test_batches_form_from_equal_sizes_and_a_batch_dependent_method_gets_one_image_per_call(tmp_path):
    config = _project(tmp_path, count=5)
    log = tmp_path / "calls.log"
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--methods", "blur,wholebatch", "--datasets", "toy",
                                      "--batch-size", "4", "--no-progress", "--out", str(tmp_path / "out")],
                                env={"COLUMNS": "300", "TOY_LOG": str(log)})
    assert result.exit_code == 0, result.output
    shapes = log.read_text().splitlines()
    # blur: a batch of 4 and the last image; wholebatch: one at a time
    assert shapes == ["(4, 3, 40, 48)", "(1, 3, 40, 48)"] + ["(1, 3, 40, 48)"] * 5
    with sqlite3.connect(tmp_path / "out" / "results.sqlite") as con:
        per_method = dict(con.execute("SELECT method, COUNT(DISTINCT image_id) FROM results WHERE metric='psnr' "
                                      "GROUP BY method"))
    assert per_method == {"blur": 5, "wholebatch": 5}


# kill -9 of a pipelined run -------------------------------------------------------------------------------
def _start(config: Path, out: Path, log: Path, delay: float) -> subprocess.Popen:
    env = {**os.environ, "TOY_LOG": str(log), "TOY_DELAY": str(delay)}
    cmd = [sys.executable, "-m", "bench", "run", "--config", str(config), "--methods", "blur", "--datasets", "toy",
           "--out", str(out), "--profile", "all", "--no-progress", "--pipeline-depth", "2", "--batch-size", "2"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finished(db: Path) -> pd.DataFrame:
    try:
        with sqlite3.connect(db, timeout=5) as con:
            df = pd.read_sql_query("SELECT image_id, metric, profile, value FROM results WHERE metric IN ('psnr','ssim')", con)
    except (sqlite3.OperationalError, pd.errors.DatabaseError):  # schema not created yet
        return pd.DataFrame(columns=["image_id", "metric", "profile", "value"])
    return df.sort_values(["image_id", "metric", "profile"]).reset_index(drop=True)


def _images_derained(log: Path) -> int:
    return sum(int(line.strip("()").split(",")[0]) for line in log.read_text().splitlines())


def test_sigkill_of_a_pipelined_run_loses_nothing_finished(tmp_path):
    """Two images per network call, reading ahead and writing behind: killed mid-run, then rerun."""
    config = _project(tmp_path)
    out, log = tmp_path / "killed", tmp_path / "killed.log"
    proc = _start(config, out, log, delay=0.5)
    deadline = time.time() + 120
    while _finished(out / "results.sqlite")["image_id"].nunique() < 3 and time.time() < deadline:
        assert proc.poll() is None, proc.stdout.read().decode()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _finished(out / "results.sqlite")
    done = set(before["image_id"])
    assert 3 <= len(done) < 10, done
    derained_before = _images_derained(log)

    rerun = _start(config, out, log, delay=0.0)
    assert rerun.wait(timeout=300) == 0, rerun.stdout.read().decode()
    after = _finished(out / "results.sqlite")
    assert set(after["image_id"]) == {str(i) for i in range(10)}
    # what was committed before the kill is untouched; finished images are not derained again (outputs written
    # behind the network but not yet committed are measured from their files)
    pd.testing.assert_frame_equal(after[after["image_id"].isin(done)].reset_index(drop=True), before, check_exact=True)
    assert _images_derained(log) - derained_before <= 10 - len(done)

    clean = tmp_path / "clean"
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--methods", "blur", "--datasets", "toy",
                                      "--out", str(clean), "--profile", "all", "--no-progress", "--pipeline-depth", "0"],
                                env={"COLUMNS": "300", "TOY_LOG": str(tmp_path / "clean.log")})
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(after, _finished(clean / "results.sqlite"), check_exact=True)
