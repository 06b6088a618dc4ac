"""Wall time of one benchmark job with the local executor and with Ray at 1 and 2 workers; the store's commits/s.

The job is `bench run --methods sapnet,rainy --datasets default` (the 32 embedded images, 256x192), with
the efficiency measurement off and one thread per process ([run] threads = 1 and OMP_NUM_THREADS=1, as
Ray sets in its workers), in a fresh results folder each time: local (one thread), then `--executor ray
--workers 1`, then `--workers 2` (Ray started by the command). Printed per job: the command's wall time
(Python, torch and Ray start-up included), the run's own time in the store (from its start, after Ray is
up, to its end) and the speed-up of 2 workers over 1, next to a control: how much faster two
single-thread processes run together than one on this machine at that moment (on a shared machine other
work takes its share of the cores). Then the results store alone: commits per second, one image per
commit (the driver commits every image separately), for an image's figures alone and with a downstream
detection record; and the CPU side of one 481x321 image (read, 16-bit write, PSNR/SSIM), which a GPU
worker pays besides deraining; and how many results/s one driver receives through Ray and commits
(stand-in workers that answer at once). Figures are printed, never asserted.

    python benchmarks/scale_out.py [--methods sapnet,rainy] [--limit N] [--commits 2000] [--skip-jobs]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[1]


def write_config(folder: Path, name: str) -> Path:
    """A bench.toml using the project's cards, cache and weights, one thread, efficiency off."""
    from bench.config import load_settings

    settings = load_settings()
    config = folder / f"{name}.toml"
    config.write_text(f'[paths]\nweights_dir = "{settings.weights_dir}"\ncache_dir = "{settings.cache_dir}"\n'
                      f'cards_dir = "{settings.cards_dir}"\noutput_dir = "{folder / name}"\n'
                      f'[run]\nthreads = 1\nefficiency_size = "off"\ndownload = false\n')
    return config


def prepare_datasets() -> None:
    """Generate the embedded suite before anything is timed."""
    from bench.config import load_settings
    from bench.data.cards import load_cards, open_dataset

    settings = load_settings()
    for name, card in load_cards(settings.cards_dir).items():
        if card.embedded:
            open_dataset(name, settings)


def time_job(folder: Path, name: str, methods: str, limit: int | None, extra: list[str]) -> tuple[float, float, int]:
    """(command wall s, run time in the store s, images measured)."""
    config = write_config(folder, name)
    cmd = [sys.executable, "-m", "bench", "run", "--config", str(config), "--methods", methods, "--datasets", "default",
           "--no-progress", *(["--limit", str(limit)] if limit else []), *extra]
    # one thread for every library in every process (Ray sets this in its workers; the local run gets the same)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    with sqlite3.connect(folder / name / "results.sqlite") as con:
        started, finished = con.execute("SELECT started, finished FROM runs").fetchone()
        images = con.execute("SELECT COUNT(DISTINCT method || '/' || dataset || '/' || image_id) FROM results "
                             "WHERE metric = 'psnr'").fetchone()[0]
    return wall, finished - started, images


BURN = ("import time, torch; torch.set_num_threads(1); x = torch.randn(1, 32, 192, 256); w = torch.randn(32, 32, 3, 3); "
        "t = time.perf_counter(); [torch.nn.functional.conv2d(x, w, padding=1) for _ in range(80)]; "
        "print(time.perf_counter() - t)")


def machine_parallelism() -> float:
    """Throughput of two single-thread convolution processes run together, relative to one alone: the speed-up
    this machine can give 2 workers right now (2.0 on two free cores; less when other work shares them)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    alone = float(subprocess.run([sys.executable, "-c", BURN], capture_output=True, text=True, env=env).stdout)
    pair = [subprocess.Popen([sys.executable, "-c", BURN], stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    together = max(float(p.communicate()[0]) for p in pair)
    return 2 * alone / together


def commits_per_second(folder: Path, count: int, with_record: bool) -> float:
    """One put_image per image, as the driver does: 2 profiles x (psnr, ssim) + time_ms, optionally 100 boxes."""
    from bench.results.store import ResultKey, ResultsStore, TaskRecord

    rng = np.random.default_rng(0)
    values = [(m, p, float(rng.random()), "bench") for p in ("matlab-y", "rgb") for m in ("psnr", "ssim")]
    values.append(("time_ms", "-", 12.5, ""))
    boxes = {"boxes": np.round(rng.random((100, 4)) * 400, 2).tolist(), "scores": np.round(rng.random(100), 5).tolist(),
             "classes": rng.integers(0, 80, 100).tolist()}
    records = [TaskRecord("yolov5:yolov5n.pt@abc", "labels", boxes)] if with_record else []
    path = folder / f"commits-{with_record}.sqlite"
    with ResultsStore(path) as store:
        key = ResultKey("sapnet", "ours", "0123456789ab", "coco150")
        start = time.perf_counter()
        for index in range(count):
            store.put_image(key, f"img{index:06d}", values, "bench-run", records)
        return count / (time.perf_counter() - start)


class _Echo:
    """A stand-in worker: returns a ready image result at once (the driver's side of the loop is what is timed)."""

    def measure(self, index: int):
        from bench.executors.worker import Reply
        from bench.runner.image_work import ImageResult

        values = [(m, p, 30.0 + index % 7, "bench") for p in ("matlab-y", "rgb") for m in ("psnr", "ssim")]
        return Reply("node", ImageResult(values + [("time_ms", "-", 12.5, "")]))


def driver_results_per_second(folder: Path, count: int, actors_n: int = 4) -> float:
    """Results/s one driver receives from ``actors_n`` Ray actors (2 in flight each, as the executor keeps them)
    and commits, one image per commit."""
    import ray

    from bench.results.store import ResultKey, ResultsStore

    ray.init(address="local", num_cpus=actors_n, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    try:
        actors = [ray.remote(_Echo).remote() for _ in range(actors_n)]
        ray.get([a.measure.remote(0) for a in actors])  # started
        key = ResultKey("sapnet", "ours", "0123456789ab", "rain100l")
        with ResultsStore(folder / "driver.sqlite") as store:
            start, sent, done, inflight = time.perf_counter(), 0, 0, {}
            while done < count:
                for actor in actors:
                    while sum(1 for a in inflight.values() if a is actor) < 2 and sent < count:
                        inflight[actor.measure.remote(sent)] = actor
                        sent += 1
                ready, _ = ray.wait(list(inflight), num_returns=1)
                for ref in ready:
                    inflight.pop(ref)
                    reply = ray.get(ref)
                    store.put_image(key, f"img{done:06d}", reply.result.values, "bench-run")
                    done += 1
            return count / (time.perf_counter() - start)
    finally:
        ray.shutdown()


def cpu_side_ms(repeats: int = 10) -> float:
    """Median ms of what a worker does for one 481x321 image besides deraining (one thread)."""
    import torch

    from bench.images import read_image, to_uint16, write_png16
    from bench.metrics.profiles import compute_full_reference

    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        from PIL import Image

        for name in ("input", "target"):
            Image.fromarray(rng.integers(0, 256, (321, 481, 3), dtype=np.uint8)).save(Path(tmp) / f"{name}.png")
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            rainy, target = read_image(Path(tmp) / "input.png"), read_image(Path(tmp) / "target.png")
            output16 = to_uint16(rainy)
            write_png16(Path(tmp) / "out.png", output16)
            compute_full_reference(output16, target, "matlab-y")
            times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="sapnet,rainy")
    parser.add_argument("--limit", type=int, default=None, help="images per embedded set (default: all 16)")
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--skip-jobs", action="store_true", help="only the store and per-image figures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-scale-out-") as tmp:
        folder = Path(tmp)
        if not args.skip_jobs:
            prepare_datasets()
            jobs = {"local, 1 thread": ("local", []),
                    "ray, 1 worker x 1 thread": ("ray1", ["--executor", "ray", "--workers", "1"]),
                    "ray, 2 workers x 1 thread": ("ray2", ["--executor", "ray", "--workers", "2"])}
            figures = {}
            print(f"job: bench run --methods {args.methods} --datasets default"
                  f"{f' --limit {args.limit}' if args.limit else ''} (threads 1, efficiency off)")
            print(f"{'executor':<28}{'images':>8}{'wall s':>9}{'run s':>9}{'images/s':>10}")
            for label, (name, extra) in jobs.items():
                wall, run_s, images = figures[label] = time_job(folder, name, args.methods, args.limit, extra)
                print(f"{label:<28}{images:>8}{wall:>9.1f}{run_s:>9.1f}{images / run_s:>10.2f}", flush=True)
            print(f"control: 2 single-thread processes together ran at {machine_parallelism():.2f}x the throughput of 1 "
                  f"(2.00x on two free cores); os.getloadavg() {os.getloadavg()[0]:.1f}")
            one, two = figures["ray, 1 worker x 1 thread"], figures["ray, 2 workers x 1 thread"]
            print(f"speed-up, 2 Ray workers over 1: {one[0] / two[0]:.2f}x wall, {one[1] / two[1]:.2f}x run")
            local = figures["local, 1 thread"]
            print(f"Ray, 2 workers over local: {local[0] / two[0]:.2f}x wall, {local[1] / two[1]:.2f}x run")
        plain = commits_per_second(folder, args.commits, with_record=False)
        record = commits_per_second(folder, args.commits, with_record=True)
        print(f"results store: {plain:.0f} commits/s (one image per commit, 5 figures); "
              f"{record:.0f} commits/s with a 100-box detection record")
        print(f"driver: {driver_results_per_second(folder, args.commits):.0f} results/s received through Ray from 4 "
              f"stand-in workers that answer at once (2 in flight each) and committed one per transaction")
        print(f"CPU side of one 481x321 image (read input and target, 16-bit write, matlab-y PSNR/SSIM): "
              f"{cpu_side_ms():.0f} ms")


if __name__ == "__main__":
    main()
