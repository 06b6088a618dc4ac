"""The local executor's pipeline: inputs are read ahead of the network, the network runs on batches of
equal-size images, and outputs are written and measured behind it, while the caller commits each image.

With depth D, a reader thread decodes up to D batches ahead of the network and up to D batches wait to be
written and measured (16-bit PNG, PSNR/SSIM profiles, no-reference metrics, downstream records) in
``writers`` threads; the network runs in the calling thread, which also commits: finished images are handed
back, in order, before each batch enters the network. With depth 0 every stage runs in the calling thread,
one image after the other. The stages are those of bench/runner/image_work.py, as a Ray worker runs them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from bench.methods.api import DerainMethod
from bench.runner.image_work import ImageResult, ImageWork, Prepared
from bench.runner.plan import ImageGroup


class _InThisThread:
    """Runs each task at once in the calling thread (depth 0), with an executor's interface."""

    def submit(self, fn: Callable, *args) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:  # raised where the result is read, as from a thread
            future.set_exception(exc)
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def measured_images(work: ImageWork, method: DerainMethod | None, group: ImageGroup, profiles: list[str],
                    ensure_loaded: Callable[[], None], *, batch_size: int = 1, depth: int = 0,
                    writers: int = 1) -> Iterator[tuple[str, ImageResult]]:
    """(image_id, result) of every sample of ``group`` (method None: the GT row), in order, as each is finished."""
    threads = depth > 0
    reader = ThreadPoolExecutor(1, "bench-read") if threads else _InThisThread()
    writer = ThreadPoolExecutor(max(1, writers), "bench-write") if threads else _InThisThread()
    samples = iter(group.samples)
    reading: deque[Future] = deque()  # Prepared items, in order
    behind: deque[tuple[str, Future]] = deque()  # (image_id, ImageResult) being written and measured, in order
    batch: list[Prepared] = []

    def read_ahead() -> None:
        while len(reading) < max(1, depth * batch_size):
            sample = next(samples, None)
            if sample is None:
                return
            reading.append(reader.submit(work.prepare, method, group.key, group.dataset, sample))

    def finish(item: Prepared) -> None:
        behind.append((item.sample.image_id, writer.submit(work.finish, group.key, group.dataset, item, profiles)))

    def finished(wait_for: int) -> Iterator[tuple[str, ImageResult]]:
        """The finished images at the head of the queue, waiting until at most ``wait_for`` remain."""
        while behind and (behind[0][1].done() or len(behind) > wait_for):
            image_id, future = behind.popleft()
            yield image_id, future.result()

    def run_network() -> Iterator[tuple[str, ImageResult]]:
        yield from finished(depth * batch_size)  # commit what is done before the network runs again
        work.derain(method, group.key, batch, ensure_loaded)
        for item in batch:
            finish(item)
        batch.clear()

    try:
        while True:
            read_ahead()
            if not reading:
                break
            item = reading.popleft().result()
            if threads:
                read_ahead()  # keep the reader busy while the network runs
            if item.rainy is None:  # a failure, an output already on disk, a published output, the GT row
                finish(item)
            else:
                if batch and batch[0].rainy.shape != item.rainy.shape:
                    yield from run_network()
                batch.append(item)
                if len(batch) == batch_size:
                    yield from run_network()
            yield from finished(depth * batch_size)
        if batch:
            yield from run_network()
        yield from finished(0)
    finally:
        reader.shutdown(wait=True, cancel_futures=True)
        writer.shutdown(wait=True, cancel_futures=True)
