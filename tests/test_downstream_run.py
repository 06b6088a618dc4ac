"""Downstream runs end to end on toy sets: tables with Rainy, methods and GT; bad labels fail one image;
a SIGKILL loses nothing; `bench datasets build` picks, resizes and converts labels as documented."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image


def bench(config: Path, *args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "bench", *args, "--config", str(config)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def _csv(config: Path) -> pd.DataFrame:
    done = bench(config, "report", "--format", "csv", "--out", "-")
    assert done.returncode == 0, done.stderr
    return pd.read_csv(StringIO(done.stdout))


def test_downstream_tables_have_rainy_methods_and_gt(downstream_project):
    config = downstream_project
    run = bench(config, "run", "--methods", "rainy,median", "--datasets", "toydet,toyseg", "--no-progress")
    assert run.returncode == 0, run.stderr
    csv = _csv(config)
    seg = csv[(csv["dataset"] == "toyseg") & (csv["metric"] == "miou")].set_index("method")
    det = csv[(csv["dataset"] == "toydet") & (csv["metric"] == "map")].set_index("method")
    assert set(seg.index) == {"rainy", "median", "gt"} and set(det.index) == {"rainy", "median", "gt"}
    assert (seg["profile"] == "toyseg:default").all() and (det["n"] == 6).all()
    assert seg.loc["gt", "mean"] > seg.loc["rainy", "mean"]
    assert seg.loc["gt", "mean"] == 1.0 and det.loc["gt", "mean"] == 1.0  # the toy models are exact on clean images
    per_class = csv[(csv["dataset"] == "toyseg") & csv["metric"].str.startswith("iou:") & (csv["method"] == "gt")]
    assert set(per_class["metric"]) >= {"iou:Road"}
    md = bench(config, "report", "--format", "md", "--out", "-").stdout
    assert "## Segmentation on toyseg (toyseg:default)" in md and "## Detection on toydet (toydet:default)" in md
    assert "| GT (clean target) |" in md and "| Rainy |" in md and "Cityscapes-19 to CamVid-11" in md
    table = md.split("## Segmentation on toyseg")[1].split("##")[0]
    assert table.index("| Rainy |") < table.index("| median |") < table.index("| GT (clean target) |")
    html_path = config.parent / "report.html"
    done = bench(config, "report", "--format", "html", "--out", str(html_path))
    assert done.returncode == 0, done.stderr
    html = html_path.read_text()
    pictures = html.split("Downstream: what the detector or segmenter sees")[1]
    assert pictures.count('<figure class="tile">') == 6  # (rainy, median, GT) on toydet (boxes) and toyseg (overlays)
    # a rerun computes nothing; a report computes figures from the store alone
    again = bench(config, "run", "--methods", "rainy,median", "--datasets", "toydet,toyseg", "--no-progress")
    assert "0 image(s) measured" in again.stderr


def test_bad_labels_fail_that_image_with_file_and_reason(downstream_project):
    config = downstream_project
    data = config.parent / "data"
    (data / "toydet" / "labels" / "img1.txt").write_text("0 0.5 0.5 0.2 0.2\n99 0.5 0.5 0.1 0.1\n")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(data / "toyseg" / "labels" / "img2.png")
    (data / "toyseg" / "labels" / "img3.png").unlink()
    run = bench(config, "run", "--methods", "rainy", "--datasets", "toydet,toyseg", "--no-progress")
    assert run.returncode == 0, run.stderr
    with sqlite3.connect(config.parent / "out" / "results.sqlite") as con:
        fails = pd.read_sql_query("SELECT method, dataset, image_id, stage, file, reason FROM failures", con)
    rainy = fails[fails["method"] == "rainy"].set_index(["dataset", "image_id"])
    assert "class id 99 is not in coco-80" in rainy.loc[("toydet", "img1"), "reason"]
    assert rainy.loc[("toydet", "img1"), "file"].endswith("img1.txt")
    assert "differs from the image" in rainy.loc[("toyseg", "img2"), "reason"]
    assert "label image missing" in rainy.loc[("toyseg", "img3"), "reason"]
    assert set(fails["stage"]) == {"labels"}
    csv = _csv(config)
    assert csv[(csv["dataset"] == "toyseg") & (csv["metric"] == "miou") & (csv["method"] == "rainy")]["n"].item() == 4


def _figures(config: Path) -> pd.DataFrame:
    csv = _csv(config)
    rows = csv[csv["metric"].isin(["map", "map50", "miou", "mpa"])]
    return rows.sort_values(["method", "dataset", "metric"]).reset_index(drop=True)


def test_sigkill_during_a_downstream_run_loses_nothing(downstream_project, tmp_path):
    config = downstream_project
    args = ["run", "--methods", "rainy,median", "--datasets", "toydet,toyseg", "--no-progress"]
    cmd = [sys.executable, "-m", "bench", *args, "--config", str(config)]
    proc = subprocess.Popen(cmd, env={**os.environ, "TOY_DELAY": "0.5"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    db = config.parent / "out" / "results.sqlite"
    deadline = time.time() + 240
    while time.time() < deadline:
        time.sleep(0.2)
        try:
            with sqlite3.connect(db, timeout=5) as con:
                done = con.execute("SELECT COUNT(DISTINCT image_id) FROM task_results WHERE method='median'").fetchone()[0]
        except sqlite3.OperationalError:
            continue
        if done >= 2:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 2 <= done < 6, "the kill must land in the middle of the median run"
    rerun = bench(config, *args)
    assert rerun.returncode == 0, rerun.stderr
    resumed = _figures(config)
    # an uninterrupted run of the same command in a fresh results folder
    fresh = config.parent / "bench_fresh.toml"
    fresh.write_text(config.read_text().replace('output_dir = "out"', 'output_dir = "out_fresh"'))
    assert bench(fresh, *args).returncode == 0
    whole = _figures(fresh)
    pd.testing.assert_frame_equal(resumed, whole)
    assert len(resumed) == 12  # 3 rows (rainy, median, GT) x 2 datasets x 2 metrics


def test_build_picks_by_seed_resizes_and_converts_labels(tmp_path):
    root = tmp_path / "cityscapes"
    rng = np.random.default_rng(0)
    for city, stems in (("frankfurt", ["frankfurt_000000_000001", "frankfurt_000000_000002"]),
                        ("lindau", ["lindau_000000_000003"])):
        for stem in stems:
            (root / "leftImg8bit" / "val" / city).mkdir(parents=True, exist_ok=True)
            (root / "gtFine" / "val" / city).mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (32, 64, 3), dtype=np.uint8)).save(
                root / "leftImg8bit" / "val" / city / f"{stem}_leftImg8bit.png")
            ids = np.full((32, 64), 7, np.uint8)
            ids[:, 32:] = 26  # car
            ids[0, 0] = 3  # a labelId outside the 19 classes: ignored
            Image.fromarray(ids).save(root / "gtFine" / "val" / city / f"{stem}_gtFine_labelIds.png")
    config = tmp_path / "bench.toml"
    config.write_text('[paths]\ndata_root = "data"\ncache_dir = "cache"\n')
    outs = []
    for attempt in range(2):
        out = tmp_path / f"built{attempt}"
        done = bench(config, "datasets", "build", "cityscape150", "--cityscapes", str(root), "--count", "2",
                     "--seed", "4", "--resize", "32x16", "--out", str(out))
        assert done.returncode == 0, done.stderr
        outs.append(out)
    manifest = json.loads((outs[0] / "manifest.json").read_text())
    assert manifest["count"] == 2 and manifest["preset"] == "heavy" and manifest["resize"] == [32, 16]
    stems = [e["stem"] for e in manifest["images"]]
    assert stems == sorted(stems) and len(set(stems)) == 2
    for stem in stems:
        a = np.asarray(Image.open(outs[0] / "input" / f"{stem}.png"))
        assert a.shape == (16, 32, 3)
        np.testing.assert_array_equal(a, np.asarray(Image.open(outs[1] / "input" / f"{stem}.png")))  # seeded
        labels = np.asarray(Image.open(outs[0] / "labels" / f"{stem}.png"))
        assert labels.shape == (16, 32)
        assert set(np.unique(labels).tolist()) <= {0, 13, 255} and labels[:, 20:].max() == 13


def test_coco_json_build_keeps_the_images_annotations(tmp_path):
    images = tmp_path / "val2017"
    images.mkdir()
    anns, imgs = [], []
    for i in range(5):
        Image.fromarray(np.full((40, 60, 3), 40 * i, np.uint8)).save(images / f"{i:012d}.jpg")
        imgs.append({"id": i, "file_name": f"{i:012d}.jpg", "width": 60, "height": 40})
        if i != 2:  # image 2 has no annotation: never picked
            anns.append({"id": 10 + i, "image_id": i, "category_id": 3, "bbox": [5, 5, 20, 10], "iscrowd": 0,
                         "area": 200})
    path = tmp_path / "instances.json"
    path.write_text(json.dumps({"images": imgs, "annotations": anns, "categories": [{"id": 3, "name": "car"}]}))
    config = tmp_path / "bench.toml"
    config.write_text('[paths]\ndata_root = "data"\n')
    done = bench(config, "datasets", "build", "coco150", "--images", str(images), "--annotations", str(path))
    assert done.returncode == 0, done.stderr
    built = tmp_path / "data" / "coco150"
    subset = json.loads((built / "labels" / "annotations.json").read_text())
    assert sorted(i["id"] for i in subset["images"]) == [0, 1, 3, 4] and len(subset["annotations"]) == 4
    assert sorted(p.name for p in (built / "input").iterdir()) == [f"{i:012d}.png" for i in (0, 1, 3, 4)]


def test_downstream_rows_are_compared_on_the_images_they_share(downstream_project):
    config = downstream_project
    assert bench(config, "run", "--methods", "rainy", "--datasets", "toyseg", "--no-progress").returncode == 0
    assert bench(config, "run", "--methods", "median", "--datasets", "toyseg", "--limit", "2",
                 "--no-progress").returncode == 0
    csv = _csv(config)
    rows = csv[(csv["dataset"] == "toyseg") & (csv["metric"] == "miou")].set_index("method")
    assert rows["n"].to_dict() == {"gt": 2, "rainy": 2, "median": 2}
    md = bench(config, "report", "--format", "md", "--out", "-").stdout
    assert "over the 2 images every row shares" in md
