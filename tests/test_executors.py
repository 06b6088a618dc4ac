"""Executors: `--executor ray` stores exactly what `--executor local` stores; a worker that dies is replaced
and every image is measured once; Ctrl-C and kill -9 of the driver lose nothing finished; without Ray the
message says how to install it; the runs table records executor, workers and nodes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from bench.cli import app

TOY_METHODS = '''
import hashlib, os, time
from pathlib import Path
from bench.methods.api import DerainMethod, MethodInfo

HERE = Path(__file__).parent


class DiesOnce(DerainMethod):
    """A 3-tap blur whose process exits the first time it sees the one 40x56 image (a crashing worker)."""
    info = MethodInfo(name="diesonce", paper="test", year=None, kind="classical")

    def derain(self, batch):
        with open(HERE / "calls.log", "a") as log:
            log.write(f"{os.getpid()} {tuple(batch.shape)}\\n")
        marker = HERE / "died-once"
        if batch.shape[-1] == 56 and not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(3)
        return (batch + batch.roll(1, -1) + batch.roll(-1, -1)) / 3


class BrokenLoad(DerainMethod):
    """A method whose weights cannot be loaded."""
    info = MethodInfo(name="brokenload", paper="test", year=None, kind="learned")

    def load(self, device):
        raise RuntimeError("checkpoint is garbage")

    def derain(self, batch):
        return batch


class Slow(DerainMethod):
    """The same blur, SLOW_S seconds per image, logging each call."""
    info = MethodInfo(name="slow", paper="test", year=None, kind="classical")

    def derain(self, batch):
        with open(HERE / "slow.log", "a") as log:
            log.write(hashlib.sha1(batch.contiguous().numpy().tobytes()).hexdigest() + "\\n")
        time.sleep(float((HERE / "slow_s").read_text()) if (HERE / "slow_s").exists() else 0.0)
        return (batch + batch.roll(1, -1) + batch.roll(-1, -1)) / 3
'''


def _project(tmp: Path, count: int = 10) -> Path:
    """A toy paired set of ``count`` 40x48 images (image 3 is 40x56) and the toy methods."""
    rng = np.random.default_rng(3)
    for i in range(count):
        width = 56 if i == 3 else 48
        for role in ("input", "target"):
            path = tmp / "data" / "toy" / role / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (40, width, 3)).astype(np.uint8)).save(path)
    (tmp / "cards").mkdir()
    (tmp / "cards" / "toy.toml").write_text(f'name = "toy"\ntitle = "Toy"\ncategory = "synthetic-paired"\n'
                                            f'expected_count = {count}\nlayouts = ["input-target"]\n')
    (tmp / "toys.py").write_text(TOY_METHODS)
    (tmp / "bench.toml").write_text('[paths]\ndata_root = "data"\ncards_dir = "cards"\noutput_dir = "out"\n'
                                    '[run]\nefficiency_size = "off"\n[plugins]\nfiles = ["toys.py"]\n')
    return tmp / "bench.toml"


def _bench(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, timeout=timeout)


def _values(db: Path) -> pd.DataFrame:
    with sqlite3.connect(db) as con:
        df = pd.read_sql_query("SELECT method, variant, weights_hash, dataset, image_id, metric, profile, value, "
                               "implementation FROM results WHERE metric != 'time_ms' AND image_id != '*'", con)
    return df.sort_values(["method", "variant", "dataset", "image_id", "metric", "profile"]).reset_index(drop=True)


def _run_row(db: Path) -> dict:
    with sqlite3.connect(db) as con:
        con.row_factory = sqlite3.Row
        return dict(con.execute("SELECT * FROM runs ORDER BY started DESC LIMIT 1").fetchone())


def _count(db: Path, sql: str) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return con.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


# acceptance 1: Ray started by the command, same figures as local --------------------------------------
def test_ray_executor_stores_the_figures_of_the_local_executor(tmp_path):
    args = ["run", "--methods", "rainy,sapnet", "--datasets", "default", "--limit", "1", "--efficiency-size", "64x48",
            "--no-progress"]
    local = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    ray_run = _bench(*args, "--executor", "ray", "--out", str(tmp_path / "ray"))
    assert ray_run.returncode == 0, ray_run.stderr[-3000:]
    assert "4 image(s) measured" in ray_run.stderr

    local_values, ray_values = _values(tmp_path / "local" / "results.sqlite"), _values(tmp_path / "ray" / "results.sqlite")
    assert len(local_values) == 8  # rainy and sapnet x 2 embedded sets x 1 image x (psnr, ssim)
    pd.testing.assert_frame_equal(local_values, ray_values)
    for folder in ("local", "ray"):  # efficiency measured on a worker too (ms differ; counts do not)
        with sqlite3.connect(tmp_path / folder / "results.sqlite") as con:
            params = dict(con.execute("SELECT method, value FROM results WHERE metric='params' AND profile='cpu@64x48'"))
        assert params["rainy"] == 0 and params["sapnet"] > 0
    run = _run_row(tmp_path / "ray" / "results.sqlite")
    assert run["executor"] == "ray" and run["workers"] == 2 and run["status"] == "finished"
    assert json.loads(run["nodes"]) and os.uname().nodename in json.loads(run["nodes"])[0]
    assert _run_row(tmp_path / "local" / "results.sqlite")["executor"] == "local"
    for image in (tmp_path / "ray" / "outputs").rglob("*.png"):  # outputs written by the workers, pixel-identical
        twin = tmp_path / "local" / image.relative_to(tmp_path / "ray")
        np.testing.assert_array_equal(np.asarray(Image.open(image)), np.asarray(Image.open(twin)))


def test_bench_list_and_a_local_run_do_not_import_ray():
    code = ("import sys; from typer.testing import CliRunner; from bench.cli import app; "
            "CliRunner().invoke(app, ['list', 'methods']); import bench.executors.local, bench.runner.runner; "
            "from bench.config import load_settings; from bench.executors import make_executor; "
            "make_executor(load_settings()); print('ray' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "False"


# Ctrl-C and kill -9 of the driver -------------------------------------------------------------------------
def test_ctrl_c_and_kill_of_the_driver_lose_nothing_finished(tmp_path):
    config = _project(tmp_path)
    (tmp_path / "slow_s").write_text("0.3")
    db = tmp_path / "out" / "results.sqlite"
    cmd = [sys.executable, "-m", "bench", "run", "--config", str(config), "--methods", "slow", "--datasets", "toy",
           "--no-progress", "--executor", "ray", "--workers", "2"]
    finished = "SELECT COUNT(DISTINCT image_id) FROM results WHERE metric='psnr'"

    def start_and_wait_for(images: int) -> subprocess.Popen:
        # SIGINT at its default in the child even when this test runs in a background job (which ignores it)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.time() + 180
        while _count(db, finished) < images and time.time() < deadline:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            time.sleep(0.1)
        return proc

    proc = start_and_wait_for(1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "finished images are saved" in err
    assert _run_row(db)["status"] == "interrupted"
    after_ctrl_c = _count(db, finished)
    assert 1 <= after_ctrl_c < 10

    proc = start_and_wait_for(after_ctrl_c + 1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    after_kill = _count(db, finished)
    assert after_ctrl_c + 1 <= after_kill < 10
    with sqlite3.connect(db) as con:
        done = {r[0] for r in con.execute("SELECT DISTINCT image_id FROM results WHERE metric='psnr'")}
    calls_before = len((tmp_path / "slow.log").read_text().splitlines())

    (tmp_path / "slow_s").write_text("0")
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"{after_kill} already finished" in rerun.stderr
    assert _count(db, finished) == 10
    # no image the store held before the rerun was derained again (workers of the killed driver may still
    # have finished the images they held: those were not in the store)
    later = set((tmp_path / "slow.log").read_text().splitlines()[calls_before:])
    assert later and not later & {_digest(tmp_path / "data" / "toy" / "input" / f"{i}.png") for i in done}


def _digest(path: Path) -> str:
    """What the Slow plugin logs for this input."""
    import hashlib

    import torch

    from bench.images import read_image

    batch = torch.from_numpy(np.ascontiguousarray(read_image(path))).permute(2, 0, 1)[None]
    return hashlib.sha1(batch.contiguous().numpy().tobytes()).hexdigest()


# the other checks share one Ray instance started here (Ray start-up takes seconds) ----------------------
@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


def test_a_dead_worker_is_replaced_and_every_image_is_measured_once(tmp_path, local_ray):
    config = _project(tmp_path)
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--methods", "diesonce", "--datasets", "toy",
                                      "--profile", "all", "--no-progress", "--executor", "ray", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "a Ray worker died" in result.output and "10 image(s) measured" in result.output
    died = int((tmp_path / "died-once").read_text())
    calls = [line.split(" ", 1) for line in (tmp_path / "calls.log").read_text().splitlines()]
    victim = [int(pid) for pid, shape in calls if shape == "(1, 3, 40, 56)"]
    assert victim[0] == died and len(victim) == 2 and victim[1] != died  # retried by another process
    db = tmp_path / "out" / "results.sqlite"
    with sqlite3.connect(db) as con:
        per_image = con.execute("SELECT image_id, COUNT(*) FROM results WHERE metric IN ('psnr','ssim') "
                                "GROUP BY image_id").fetchall()
        failures = con.execute("SELECT COUNT(*) FROM failures").fetchone()[0]
    assert len(per_image) == 10 and {n for _, n in per_image} == {8} and failures == 0  # 4 profiles x 2 metrics

    # the same figures as a local run of the same command
    local = CliRunner().invoke(app, ["run", "--config", str(config), "--methods", "diesonce", "--datasets", "toy",
                                     "--profile", "all", "--no-progress", "--out", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    pd.testing.assert_frame_equal(_values(db), _values(tmp_path / "local" / "results.sqlite"))


def test_a_method_that_cannot_load_on_a_worker_is_listed_as_not_run(tmp_path, local_ray):
    config = _project(tmp_path, count=3)
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--methods", "brokenload,slow", "--datasets", "toy",
                                      "--no-progress", "--executor", "ray"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "method brokenload failed to load: RuntimeError: checkpoint is garbage" in result.output
    assert "3 image(s) measured" in result.output  # slow's images
    with sqlite3.connect(tmp_path / "out" / "results.sqlite") as con:
        assert con.execute("SELECT reason FROM unavailable WHERE method='brokenload'").fetchone()[0] == \
            "RuntimeError: checkpoint is garbage"
        assert con.execute("SELECT COUNT(*) FROM results WHERE method='brokenload'").fetchone()[0] == 0


def _figures(config: Path, out: Path) -> pd.DataFrame:
    done = CliRunner().invoke(app, ["report", "--config", str(config), "--out", "-", "--format", "csv"],
                              env={"BENCH_OUTPUT_DIR": str(out)})
    assert done.exit_code == 0, done.output
    csv = pd.read_csv(StringIO(done.stdout))
    rows = csv[csv["metric"].isin(["map", "map50", "miou", "mpa", "psnr", "ssim"])]
    return rows.sort_values(["method", "dataset", "metric", "profile"]).reset_index(drop=True)[["method", "dataset", "metric",
                                                                                              "profile", "n", "mean"]]


def test_downstream_on_ray_without_a_shared_filesystem_matches_local(downstream_project, local_ray, monkeypatch):
    config = downstream_project
    monkeypatch.chdir(config.parent)
    args = ["run", "--config", str(config), "--methods", "rainy,median", "--datasets", "toydet,toyseg", "--no-progress"]
    scratch_before = set(Path(tempfile.gettempdir()).glob("bench-worker-*"))
    on_ray = CliRunner().invoke(app, [*args, "--executor", "ray", "--no-shared-fs", "--out", str(config.parent / "ray")])
    assert on_ray.exit_code == 0, on_ray.output
    local = CliRunner().invoke(app, [*args, "--out", str(config.parent / "local")])
    assert local.exit_code == 0, local.output
    ray_figures, local_figures = _figures(config, config.parent / "ray"), _figures(config, config.parent / "local")
    assert set(ray_figures["method"]) == {"rainy", "median", "gt"} and len(ray_figures) >= 12
    pd.testing.assert_frame_equal(ray_figures, local_figures)
    # outputs and segmentation predictions came back from the workers to the driver's output folder
    shipped = sorted(p.relative_to(config.parent / "ray") for p in (config.parent / "ray" / "outputs").rglob("*.png")
                     if "references" not in p.parts)
    written = sorted(p.relative_to(config.parent / "local") for p in (config.parent / "local" / "outputs").rglob("*.png")
                     if "references" not in p.parts)
    assert shipped == written and any("predictions" in p.parts for p in shipped)
    assert set(Path(tempfile.gettempdir()).glob("bench-worker-*")) == scratch_before  # workers removed their scratch


# messages ----------------------------------------------------------------------------------------------
def test_without_ray_the_message_says_how_to_install_it(tmp_path, monkeypatch):
    config = _project(tmp_path, count=2)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--methods", "slow", "--datasets", "toy",
                                      "--executor", "ray"], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert "pip install -e '.[ray]'" in result.output and "--executor local" in result.output
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--methods", "slow", "--datasets", "toy",
                                      "--workers", "2"], env={"COLUMNS": "300"})
    assert result.exit_code == 2 and "only apply to --executor ray" in result.output
    assert not (tmp_path / "out" / "results.sqlite").exists()  # nothing ran


def test_bench_toml_chooses_the_executor(tmp_path):
    from bench.config import load_settings

    config = tmp_path / "bench.toml"
    config.write_text('[run]\nexecutor = "ray"\nray_address = "auto"\nworkers = 4\ngpus_per_worker = 0.5\nshared_fs = false\n')
    settings = load_settings(config)
    assert (settings.executor, settings.ray_address, settings.workers, settings.gpus_per_worker, settings.shared_fs) == \
           ("ray", "auto", 4, 0.5, False)
    config.write_text("[run]\n")
    assert load_settings(config).config_hash() == settings.config_hash()  # where work runs is not part of the config


def test_a_store_from_before_gains_the_execution_columns(tmp_path):
    from bench.results.store import ResultsStore

    db = tmp_path / "results.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE runs (run_id TEXT PRIMARY KEY, started REAL, finished REAL, command TEXT, "
                    "git_commit TEXT, versions TEXT, config_hash TEXT, config TEXT, device TEXT, host TEXT, status TEXT)")
        con.execute("INSERT INTO runs VALUES ('old', 1, 2, 'bench run', 'abc', '{}', 'h', '{}', 'cpu', 'Linux', 'finished')")
    with ResultsStore(db) as store:
        store.start_run("new", {"command": "bench run --executor ray", "executor": "ray"})
        store.finish_run("new", workers=3, nodes=["a (10.0.0.1)", "b (10.0.0.2)"])
        runs = store.runs().set_index("run_id")
    assert runs.loc["old", "status"] == "finished" and pd.isna(runs.loc["old", "executor"])
    assert runs.loc["new", "executor"] == "ray" and runs.loc["new", "workers"] == 3
    assert json.loads(runs.loc["new", "nodes"]) == ["a (10.0.0.1)", "b (10.0.0.2)"]
