"""The training loop behind ``bench train sapnet|prenet``.

``train(config)`` builds the network and its losses, draws random patches (see :mod:`bench.train.data`),
optimises with Adam and a step lr schedule, logs every loss term to ``log.csv``, writes atomic resumable
checkpoints and finally ships a plain state dict with a JSON sidecar (config, iterations, wall time,
hardware, backbones, final losses).
"""

from __future__ import annotations

import csv
import json
import math
import platform
import random
import signal
import threading
import time
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.errors import BadInputError
from bench.train.checkpoint import load_checkpoint, save_checkpoint, save_model
from bench.train.config import TrainConfig, TrainResult
from bench.train.data import PairedImages, PatchSampler, SynthRainImages, find_pairs
from bench.train.schedule import StepSchedule

LOG_TERMS = ("ssim", "seg", "pcl", "lpisl")


class SSIMOnlyLoss(nn.Module):
    """PReNet's loss, -SSIM, with the same call signature as SAPNetLoss."""

    def __init__(self) -> None:
        super().__init__()
        from methods.sapnet.losses import NegativeSSIMLoss

        self.ssim_loss = NegativeSSIMLoss()

    @property
    def backbones(self) -> dict[str, str]:
        """No frozen network: -SSIM needs none."""
        return {}

    def forward(self, derained: torch.Tensor, clean: torch.Tensor, rainy: torch.Tensor,
                use_seg: bool = True) -> tuple[torch.Tensor, dict[str, float]]:
        value = self.ssim_loss(derained, clean)
        return value, {"ssim": float(value.detach())}


def build_network(config: TrainConfig) -> nn.Module:
    """The network ``config.model`` names, freshly initialised."""
    if config.model == "sapnet":
        from methods.sapnet.network import SAPNetwork

        return SAPNetwork(use_cra=config.use_cra, use_dilation=config.use_dilation, stages=config.stages)
    if config.model == "prenet":
        from methods.prenet.networks import PReNet

        return PReNet(stages=config.stages)
    raise BadInputError(f"train: unknown model {config.model!r}; choose sapnet or prenet")


def build_loss(config: TrainConfig) -> nn.Module:
    """SAPNetLoss with the configured weights for "sapnet"; -SSIM for "prenet"."""
    if config.model == "prenet":
        return SSIMOnlyLoss()
    from methods.sapnet.losses import LossWeights, SAPNetLoss

    weights = LossWeights(config.w_ssim, config.w_seg, config.w_pcl, config.w_lpisl)
    return SAPNetLoss(weights, vgg_weights=config.vgg_weights, resnet_weights=config.resnet_weights, seed=config.seed)


def load_initial_weights(model: nn.Module, path: Path) -> None:
    """Load a plain state dict (``module.`` prefix stripped) into ``model`` strictly; BadInputError names the file."""
    from bench.methods.checkpoints import read_torch_file, unwrap_state_dict

    owner = "bench train --init-from"
    fix = "pass a state dict saved by `bench train` for the same network (see the JSON sidecar beside it)"
    # a training checkpoint ({"model": ...}) gives its network weights
    state = unwrap_state_dict(read_torch_file(path, owner, fix), path, owner, fix, wrappers=("model",))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise BadInputError(f"bench train --init-from: {path} does not fit {type(model).__name__} ({first}); {fix}") from exc


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def train_step(model: nn.Module, loss_fn: nn.Module, optimizer: torch.optim.Optimizer, rainy: torch.Tensor,
               clean: torch.Tensor, use_seg: bool = True, bf16: bool = False) -> tuple[float, dict[str, float]]:
    """One optimisation step on a batch (float32 Bx3xHxW in [0,1]); returns (total loss, terms)."""
    model.train()
    autocast = torch.autocast(rainy.device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    with autocast:
        derained = model(rainy)
        total, terms = loss_fn(derained.float(), clean, rainy, use_seg=use_seg)
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    optimizer.step()
    return float(total.detach()), terms


def _y_psnr(output: np.ndarray, target: np.ndarray) -> float:
    """PSNR (dB, peak 1) on BT.601 Y of float RGB images in [0,1]."""
    coef = np.array([65.481, 128.553, 24.966]) / 255.0
    y_out, y_tgt = output @ coef, target @ coef
    mse = float(np.mean((y_out - y_tgt) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


@torch.no_grad()
def validate(model: nn.Module, pairs: list[tuple[np.ndarray, np.ndarray]], device: torch.device) -> float:
    """Mean Y PSNR (dB) of the clamped network output over the validation pairs."""
    model.eval()
    values = []
    for rainy, clean in pairs:
        x = torch.from_numpy(np.ascontiguousarray(rainy.transpose(2, 0, 1)))[None].to(device)
        out = model(x).clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy().astype(np.float64)
        values.append(_y_psnr(out, clean.astype(np.float64)))
    model.train()
    return float(np.mean(values))


def hardware_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA), torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {cpu}, {torch.get_num_threads()} torch thread(s), torch {torch.__version__}"


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    state: dict[str, Any] = {"numpy": rng.bit_generator.state, "torch": torch.get_rng_state(),
                             "python": list(random.getstate()[1])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = state["numpy"]
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _total_iterations(config: TrainConfig, sampler: PatchSampler) -> int:
    if config.iters is not None:
        return config.iters
    if config.epochs is None:
        raise BadInputError("train: set iters or epochs (both are None)")
    return max(1, math.ceil(config.epochs * sampler.patches_per_epoch() / config.batch))


def _make_source(config: TrainConfig) -> PairedImages | SynthRainImages:
    if (config.data is None) == (config.synth_from is None):
        raise BadInputError("train: give exactly one of data (a paired folder) or synth_from (clean photographs)")
    if config.synth_from is not None:
        return SynthRainImages(config.synth_from, config.rain_preset, config.max_side)
    return PairedImages(config.data, config.max_side)  # type: ignore[arg-type]


def _open_log(path: Path, resume_at: int | None) -> tuple[Any, Any]:
    fields = ["iteration", "elapsed_s", "lr", "loss", *LOG_TERMS, "val_psnr"]
    rows: list[dict[str, str]] = []
    if resume_at is not None and path.is_file():  # keep the rows up to the checkpoint
        with path.open(newline="") as handle:
            rows = [r for r in csv.DictReader(handle) if int(r["iteration"]) <= resume_at]
    handle = path.open("w", newline="")
    writer = csv.DictWriter(handle, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    handle.flush()
    return handle, writer


def train(config: TrainConfig) -> TrainResult:
    """Train ``config.model`` as configured; returns where the shipped model, sidecar and log are."""
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path, log_path = out_dir / "checkpoint.pt", out_dir / "log.csv"

    torch.manual_seed(config.seed)
    random.seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = build_network(config).to(device)
    loss_fn = build_loss(config).to(device)
    sampler = PatchSampler(_make_source(config), config.patch)
    total_iters = _total_iterations(config, sampler)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = StepSchedule(optimizer, config.lr, config.milestones, config.lr_gamma)
    val_pairs = _validation_pairs(config)

    start_iter, elapsed_before = 0, 0.0
    resuming = config.resume and ckpt_path.is_file()
    history: list[dict[str, Any]] = []  # the stages behind init_from, kept in every checkpoint
    if config.init_from is not None and not resuming:
        load_initial_weights(model, Path(config.init_from))
        history = _earlier_stages(Path(config.init_from))
    if resuming:
        state = load_checkpoint(ckpt_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        _restore_rng(rng, state["rng"])
        start_iter, elapsed_before = int(state["iteration"]), float(state["elapsed_s"])
        history = list(state.get("earlier_stages", []))
    log_handle, log = _open_log(log_path, start_iter if start_iter else None)
    backbones = dict(getattr(loss_fn, "backbones", {}))

    t0 = time.monotonic()
    limit_s = config.time_limit_min * 60 if config.time_limit_min else None
    iteration, terms, total, val_psnr = start_iter, {}, float("nan"), None

    def elapsed() -> float:
        return elapsed_before + time.monotonic() - t0

    def checkpoint() -> None:
        save_checkpoint(ckpt_path, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
            "iteration": iteration, "elapsed_s": elapsed(), "rng": _rng_state(rng), "config": config.to_json(),
            "earlier_stages": history,
        })

    def progress_fraction() -> float:
        frac = iteration / total_iters
        return max(frac, elapsed() / limit_s) if limit_s else frac

    bar = _progress(config.progress, total_iters, start_iter, config.model)
    interrupted = _InterruptFlag()
    try:
        while iteration < total_iters and not (limit_s and elapsed() >= limit_s) and not interrupted.raised:
            lr = schedule.update(progress_fraction())
            rainy, clean = (t.to(device) for t in sampler.batch(config.batch, rng))
            total, terms = train_step(model, loss_fn, optimizer, rainy, clean,
                                      use_seg=progress_fraction() >= config.seg_start, bf16=config.bf16)
            iteration += 1
            if not math.isfinite(total):
                raise RuntimeError(f"train: loss became {total} at iteration {iteration}; lower lr or use fp32")
            val_now = None
            if iteration % config.checkpoint_every == 0 or iteration == total_iters:
                if val_pairs:
                    val_psnr = val_now = validate(model, val_pairs, device)
                checkpoint()
            if iteration % config.log_every == 0 or val_now is not None or iteration == total_iters:
                log.writerow({"iteration": iteration, "elapsed_s": f"{elapsed():.1f}", "lr": f"{lr:.3g}",
                              "loss": f"{total:.6f}", **{k: f"{terms[k]:.6f}" for k in terms},
                              "val_psnr": "" if val_now is None else f"{val_now:.3f}"})
                log_handle.flush()
            if bar is not None:
                bar[0].update(bar[1], advance=1, description=f"{config.model} loss {total:.4f}")
        if iteration % config.checkpoint_every != 0 and iteration != total_iters:
            if val_pairs:
                val_psnr = validate(model, val_pairs, device)
            checkpoint()  # stopped by the time limit or Ctrl-C
    finally:
        interrupted.restore()
        log_handle.close()
        if bar is not None:
            bar[0].stop()
    if interrupted.raised:
        raise KeyboardInterrupt(f"train: interrupted at iteration {iteration}; checkpoint {ckpt_path} saved "
                                f"(continue with --resume)")

    wall = elapsed()
    final_path = Path(config.final_model) if config.final_model else out_dir / f"{config.model}_final.pt"
    sidecar = {
        "model": config.model,
        "network": {"class": type(model).__name__, "parameters": sum(p.numel() for p in model.parameters())},
        "iterations": iteration,
        "planned_iterations": total_iters,
        "stopped_by_time_limit": iteration < total_iters,
        "wall_time_s": round(wall, 1),
        "hardware": hardware_description(device),
        "bf16": config.bf16,
        "data": sampler.source.description,
        "backbones": backbones,
        "final_losses": {"loss": total, **terms},
        "val_psnr_y_db": val_psnr,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": config.to_json(),
        "earlier_stages": history,
        "total_iterations": iteration + sum(stage.get("iterations") or 0 for stage in history),
        "total_wall_time_s": round(wall + sum(stage.get("wall_time_s") or 0 for stage in history), 1),
    }
    json_path = save_model(final_path, model, sidecar)
    return TrainResult(final_path, json_path, log_path, iteration, wall, {"loss": total, **terms}, val_psnr, backbones)


class _InterruptFlag:
    """Ctrl-C (SIGINT) or SIGTERM while training: finish the current step, checkpoint, then stop. Installed only in
    the main thread (signal handlers cannot be set elsewhere); a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.raised = False
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.raised:
            raise KeyboardInterrupt
        self.raised = True

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


def _earlier_stages(init_from: Path) -> list[dict[str, Any]]:
    """The training stages behind the weights ``init_from``, oldest first, read from its JSON sidecar (if any).

    Each stage: iterations, wall_time_s, hardware, data, config, final_losses.
    """
    sidecar = init_from.with_suffix(".json")
    try:
        earlier = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return [{"iterations": 0, "wall_time_s": 0.0, "weights": str(init_from),
                 "note": "initial weights without a readable bench-train sidecar"}]
    stage = {key: earlier.get(key) for key in ("iterations", "wall_time_s", "hardware", "data", "config", "final_losses")}
    return [*earlier.get("earlier_stages", []), stage]


def _validation_pairs(config: TrainConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    if config.val_dir is None:
        return []
    from bench.images import read_image

    pairs = find_pairs(config.val_dir)
    if config.val_images:
        pairs = pairs[: config.val_images]
    return [(read_image(r), read_image(c)) for r, c in pairs]


def _progress(enabled: bool, total: int, done: int, name: str) -> tuple[Any, Any] | None:
    if not enabled:
        return None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    task = progress.add_task(name, total=total, completed=done)
    progress.start()
    return progress, task
