"""Time BRISQUE and NIQE over a folder of images (default: the 147 SIRR real rainy images).

    python benchmarks/no_reference_speed.py                      # ../shared/data/sirr_real147, original sizes
    python benchmarks/no_reference_speed.py --resize 481x321     # as the SAPNet authors evaluated SIRR
    python benchmarks/no_reference_speed.py path/to/folder --limit 20 --metrics brisque,niqe,piqe

Prints the implementation of each metric, the total and per-image wall time, and the mean score.
Images are read with the project's loader and rounded to uint8, as the harness does. With --resize
WxH, portrait images get HxW so that no image is distorted by a change of orientation.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.images import list_images, read_image  # noqa: E402 (needs the sys.path line above)
from bench.metrics.registry import no_reference_metric  # noqa: E402

DEFAULT_FOLDER = ROOT.parent / "shared" / "data" / "sirr_real147"


def load_uint8(path: Path, resize: tuple[int, int] | None) -> np.ndarray:
    image = np.round(read_image(path) * 255.0).astype(np.uint8)
    if resize is None:
        return image
    width, height = resize
    if image.shape[0] > image.shape[1]:
        width, height = height, width
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BICUBIC))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--resize", default=None, help="WxH, e.g. 481x321 (SAPNet's SIRR copy)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N images (0 = all)")
    parser.add_argument("--metrics", default="brisque,niqe", help="comma list of no-reference metric names")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        parser.error(f"{args.folder}: folder not found; pass a folder of images")
    resize = tuple(int(v) for v in args.resize.lower().split("x")) if args.resize else None
    paths = list_images(args.folder)[: args.limit or None]
    if not paths:
        parser.error(f"{args.folder}: no images found")

    t0 = time.perf_counter()
    images = [load_uint8(p, resize) for p in paths]
    pixels = sum(im.shape[0] * im.shape[1] for im in images)
    print(f"{len(images)} images from {args.folder} ({pixels / len(images) / 1e6:.2f} Mpx mean"
          f"{', resized to ' + args.resize if resize else ''}); loading took {time.perf_counter() - t0:.1f} s")

    total = 0.0
    for name in args.metrics.split(","):
        metric = no_reference_metric(name.strip())
        if metric.unavailable_reason():
            print(f"{name}: unavailable: {metric.unavailable_reason()}")
            continue
        start = time.perf_counter()
        scores = [metric.score(im) for im in images]
        elapsed = time.perf_counter() - start
        total += elapsed
        print(f"{name}: {elapsed:.2f} s total, {1000 * elapsed / len(images):.0f} ms/image, "
              f"mean {np.mean(scores):.3f}  [{metric.implementation}]")
    print(f"all metrics: {total:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
