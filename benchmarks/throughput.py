"""Seconds per image of SAPNet on Rain100L: the network alone against `bench run`, batch sizes 1 and 4, and bf16.

Every figure is a whole process started here, one after the other, on the same images (the first ``--images`` of
Rain100L as `bench run --limit` takes them) with the same weights (sapnet:official-2021-09-12):

- network alone: a pure torch loop in its own process (import torch, build SAPNet, load the checkpoint, read the
  images, one forward pass each under inference_mode), as the authors' test script runs it; the loop's own time
  (forward passes only) is printed beside it;
- bench run, one image at a time (``--pipeline-depth 0``: read, derain, write, measure, commit in turn);
- bench run, pipelined (the default: inputs read ahead, outputs written and measured behind the network);
- bench run ``--batch-size 4`` (pipelined);
- bench run ``--precision bf16`` (pipelined) on the first ``--bf16-images`` images, with the PSNR change bf16
  causes (matlab-y, mean and worst image) against the fp32 run's figures of the same images.

Each `bench run` writes a fresh results folder, efficiency measurement off. With ``--repeats N`` the
configurations are run in turn N times and each figure is the median. Ratios are against the network alone
(whole process) of the same run. The machine's load average is printed: on a shared machine other work takes
its share of the cores. Figures are printed, never asserted.

    python benchmarks/throughput.py [--images 20] [--bf16-images N] [--repeats 1] [--data-root D] [--weights-dir W]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
SPEC = "sapnet:official-2021-09-12"
WEIGHTS = "sapnet/sapnet_official_2021-09-12.pth"

NETWORK_ALONE = '''
import sys, time
import cv2, numpy as np, torch
from methods.sapnet.network import SAPNetwork

weights, paths = sys.argv[1], sys.argv[2:]
net = SAPNetwork()
state = torch.load(weights, map_location="cpu", weights_only=True)
net.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
net.eval()
images = [np.ascontiguousarray(cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB), dtype=np.float32) / 255 for p in paths]
with torch.inference_mode():
    start = time.perf_counter()
    for image in images:
        net(torch.from_numpy(image).permute(2, 0, 1)[None]).clamp(0, 1)
    print(time.perf_counter() - start)
'''


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def network_alone(weights: Path, inputs: list[Path]) -> tuple[float, float]:
    """(whole process s, forward loop s)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", NETWORK_ALONE, str(weights), *map(str, inputs)], capture_output=True,
                          text=True, cwd=PROJECT)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"network alone failed:\n{done.stderr[-3000:]}")
    return wall, float(done.stdout.strip().splitlines()[-1])


def bench_run(out: Path, data_root: Path, weights_dir: Path, limit: int, *flags: str) -> float:
    """Whole-process wall seconds of one `bench run` into a fresh folder ``out``."""
    cmd = [sys.executable, "-m", "bench", "run", "--methods", SPEC, "--datasets", "rain100l", "--limit", str(limit),
           "--efficiency-size", "off", "--data-root", str(data_root), "--weights-dir", str(weights_dir),
           "--out", str(out), "--no-progress", *flags]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=PROJECT)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return wall


def per_image(out: Path, metric: str, profile: str) -> dict[str, float]:
    """image_id -> stored figure (time_ms: the network's own time for the image, as run)."""
    with sqlite3.connect(out / "results.sqlite") as con:
        return dict(con.execute("SELECT image_id, value FROM results WHERE metric=? AND profile=?", (metric, profile)))


def differing_pixels(a: Path, b: Path) -> int:
    """16-bit output values that differ between two runs' outputs of the same images."""
    from bench.images import read_png16

    pairs = [(p, b / p.relative_to(a)) for p in sorted((a / "outputs").rglob("*.png"))]
    return sum(int((read_png16(x) != read_png16(y)).sum()) for x, y in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--bf16-images", type=int, default=None, help="images for the bf16 run (default: --images)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--data-root", type=Path, default=Path(os.environ.get("BENCH_DATA_ROOT", PROJECT.parent / "shared" / "data")))
    parser.add_argument("--weights-dir", type=Path, default=None, help="default: BENCH_WEIGHTS_DIR, else DATA_ROOT/weights")
    args = parser.parse_args()
    weights_dir = args.weights_dir or Path(os.environ.get("BENCH_WEIGHTS_DIR", args.data_root / "weights"))
    bf16_images = args.bf16_images or args.images

    from bench.config import load_settings
    from bench.data.cards import open_dataset

    samples = open_dataset("rain100l", load_settings(data_root=args.data_root)).samples[: args.images]
    inputs = [s.input for s in samples]
    import torch

    print(f"SAPNet ({SPEC}) on {len(inputs)} Rain100L images, torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads, {os.cpu_count()} CPUs; {load()} at the start")
    configs = {
        "bench run, one image at a time": ("--pipeline-depth", "0"),
        "bench run, pipelined (default)": (),
        "bench run, pipelined, batch 4": ("--batch-size", "4"),
    }
    walls: dict[str, list[float]] = {name: [] for name in ["network alone (whole process)", *configs]}
    loops: list[float] = []
    with tempfile.TemporaryDirectory(prefix="throughput-") as tmp:
        for repeat in range(args.repeats):
            wall, loop = network_alone(weights_dir / WEIGHTS, inputs)
            walls["network alone (whole process)"].append(wall)
            loops.append(loop)
            print(f"  [{repeat + 1}] network alone: {wall:.1f} s ({load()})", flush=True)
            for k, (name, flags) in enumerate(configs.items()):
                out = Path(tmp) / f"{repeat}-{k}"
                walls[name].append(bench_run(out, args.data_root, weights_dir, args.images, *flags))
                print(f"  [{repeat + 1}] {name}: {walls[name][-1]:.1f} s ({load()})", flush=True)
        fp32_out, batch4_out, bf16_out = Path(tmp) / "0-1", Path(tmp) / "0-2", Path(tmp) / "bf16"  # first repeat
        bf16_wall = bench_run(bf16_out, args.data_root, weights_dir, bf16_images, "--precision", "bf16")
        print(f"  bf16 on {bf16_images} images: {bf16_wall:.1f} s ({load()})\n", flush=True)
        fp32_psnr, bf16_psnr = per_image(fp32_out, "psnr", "matlab-y"), per_image(bf16_out, "psnr", "matlab-y")
        fp32_ms, bf16_ms = per_image(fp32_out, "time_ms", "-"), per_image(bf16_out, "time_ms", "-")
        differ = differing_pixels(fp32_out, batch4_out)

    n = len(inputs)
    alone = statistics.median(walls["network alone (whole process)"])
    loop = statistics.median(loops)
    print(f"{'':<44}{'s/image':>9}{'vs network alone':>18}")
    print(f"{'network alone, forward passes only':<44}{loop / n:>9.3f}{loop / alone:>17.3f}x")
    for name, values in walls.items():
        print(f"{name:<44}{statistics.median(values) / n:>9.3f}{statistics.median(values) / alone:>17.3f}x")
    batch1, batch4 = (statistics.median(walls[k]) for k in ("bench run, pipelined (default)", "bench run, pipelined, batch 4"))
    print(f"batch 4 / batch 1 (bench run, whole process): {batch4 / batch1:.3f}; batch 4 outputs "
          f"{'identical to batch 1' if not differ else f'differ from batch 1 in {differ} 16-bit values'}")
    # bf16 against fp32 on the same images: the network's own time per image as each run stored it
    fp32_net = statistics.fmean(fp32_ms[i] for i in bf16_ms) / 1000
    bf16_net = statistics.fmean(bf16_ms.values()) / 1000
    print(f"bench run --precision bf16 ({bf16_images} images): {bf16_wall / bf16_images:.3f} s/image whole process; "
          f"network {bf16_net:.3f} s/image against {fp32_net:.3f} in fp32 (speed-up {fp32_net / bf16_net:.2f}x)")
    diffs = {i: bf16_psnr[i] - fp32_psnr[i] for i in bf16_psnr}
    worst = max(diffs, key=lambda i: abs(diffs[i]))
    print(f"PSNR change bf16 - fp32 (matlab-y, {len(diffs)} images): mean {statistics.fmean(diffs.values()):+.4f} dB, "
          f"worst image {worst}: {diffs[worst]:+.4f} dB")


if __name__ == "__main__":
    main()
