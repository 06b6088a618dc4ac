"""A run killed with SIGKILL loses nothing: a rerun skips finished images and ends where an
uninterrupted run ends."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

SLOW_PLUGIN = '''
import os, time
from bench.methods.api import DerainMethod, MethodInfo

class SlowBlur(DerainMethod):
    """Deterministic 'deraining' (a 3-tap blur) that logs each image it processes."""
    info = MethodInfo(name="slowblur", paper="test", year=None, kind="classical")
    def derain(self, batch):
        with open(os.environ["SLOWBLUR_LOG"], "a") as log:
            log.write(f"{tuple(batch.shape)} {float(batch.mean()):.10f}\\n")
        time.sleep(float(os.environ.get("SLOWBLUR_DELAY", "0")))
        return (batch + batch.roll(1, -1) + batch.roll(-1, -1)) / 3
'''


def _project(tmp: Path) -> Path:
    rng = np.random.default_rng(3)
    for i in range(10):
        for role in ("input", "target"):
            path = tmp / "data" / "toy" / role / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (40, 48, 3)).astype(np.uint8)).save(path)
    (tmp / "cards").mkdir()
    (tmp / "cards" / "toy.toml").write_text('name = "toy"\ntitle = "Toy"\ncategory = "synthetic-paired"\n'
                                            'expected_count = 10\nlayouts = ["input-target"]\n')
    (tmp / "slow.py").write_text(SLOW_PLUGIN)
    (tmp / "bench.toml").write_text('[paths]\ndata_root = "data"\ncards_dir = "cards"\n[plugins]\nfiles = ["slow.py"]\n')
    return tmp / "bench.toml"


def _run(config: Path, out: Path, log: Path, delay: float) -> subprocess.Popen:
    env = {**os.environ, "SLOWBLUR_LOG": str(log), "SLOWBLUR_DELAY": str(delay)}
    cmd = [sys.executable, "-m", "bench", "run", "--config", str(config), "--methods", "slowblur", "--datasets", "toy",
           "--out", str(out), "--profile", "all", "--no-progress"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _image_calls(log: Path) -> int:
    """Derain calls on dataset images (the efficiency measurement runs on a 321x481 image)."""
    return sum("(1, 3, 40, 48)" in line for line in log.read_text().splitlines())


def _finished_images(db: Path) -> set[str]:
    if not db.exists():
        return set()
    try:
        with sqlite3.connect(db, timeout=5) as con:
            rows = con.execute("SELECT DISTINCT image_id FROM results WHERE metric='psnr' AND dataset='toy'")
            return {r[0] for r in rows}
    except sqlite3.OperationalError:  # schema not created yet
        return set()


def _values(db: Path) -> pd.DataFrame:
    with sqlite3.connect(db) as con:
        df = pd.read_sql_query("SELECT image_id, metric, profile, value FROM results WHERE dataset='toy' "
                               "AND metric IN ('psnr','ssim')", con)
    return df.sort_values(["image_id", "metric", "profile"]).reset_index(drop=True)


def test_sigkill_then_rerun_recomputes_nothing_finished_and_matches_uninterrupted(tmp_path):
    config = _project(tmp_path)
    out, log = tmp_path / "killed", tmp_path / "killed.log"
    proc = _run(config, out, log, delay=0.4)
    deadline = time.time() + 120
    while len(_finished_images(out / "results.sqlite")) < 3 and time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"run ended early: {proc.stdout.read().decode()}")
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _finished_images(out / "results.sqlite")
    assert 3 <= len(before) < 10, before
    calls_before = _image_calls(log)

    rerun = _run(config, out, log, delay=0.0)
    assert rerun.wait(timeout=300) == 0, rerun.stdout.read().decode()
    calls_after = _image_calls(log)
    # finished images are not derained again; the rest are (the one in flight at the kill may have
    # had its output saved already, and is then measured from that file)
    assert 10 - len(before) - 1 <= calls_after - calls_before <= 10 - len(before)
    assert _finished_images(out / "results.sqlite") == {str(i) for i in range(10)}

    clean_out, clean_log = tmp_path / "clean", tmp_path / "clean.log"
    assert _run(config, clean_out, clean_log, delay=0.0).wait(timeout=300) == 0
    pd.testing.assert_frame_equal(_values(out / "results.sqlite"), _values(clean_out / "results.sqlite"))

    # a third run finds everything done and derains nothing
    assert _run(config, out, log, delay=0.0).wait(timeout=300) == 0
    assert _image_calls(log) == calls_after
