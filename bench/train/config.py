"""Configuration and result of a training run (``bench train sapnet|prenet``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

ModelName = Literal["sapnet", "prenet"]


@dataclass
class TrainConfig:
    """Everything a training run depends on. Paths may be str or Path; defaults follow the SAPNet paper."""

    model: ModelName = "sapnet"
    """network to train: "sapnet" (SAPNetwork, SAPNet's four losses) or "prenet" (PReNet, -SSIM only)."""
    out_dir: Path = Path("runs/train")
    """run folder: checkpoint.pt, log.csv, the final model (<model>_final.pt) and its JSON sidecar."""
    data: Path | None = None
    """paired training folder (input/ + target/ with equal names, or rain-NNN + norain-NNN); or use synth_from."""
    synth_from: Path | None = None
    """folder of clean photographs; every patch gets fresh synthetic rain (bench.data.synth)."""
    rain_preset: str = "light"
    """synthetic rain preset for synth_from: "light" (Rain100L-like), "heavy", or "light,heavy" (one drawn per patch)."""
    max_side: int | None = 512
    """training images larger than this (px, longer side) are downscaled first; None keeps them as they are."""
    val_dir: Path | None = None
    """optional paired folder for validation PSNR (dB, BT.601 Y, peak 1) at every checkpoint."""
    val_images: int = 10
    """validation images used (the first N pairs); 0 = all."""
    iters: int | None = None
    """training iterations (batches); takes precedence over epochs."""
    epochs: int | None = 100
    """training epochs when iters is None; an epoch = the stride-80 patch grid of the data (official sizing)."""
    time_limit_min: float | None = None
    """wall-clock budget (minutes): training stops when it is spent, and the lr milestones follow
    max(iteration fraction, time fraction), so a slow machine still decays the lr."""
    patch: int = 100
    """training patch side (px)."""
    batch: int = 12
    """patches per batch."""
    lr: float = 1e-4
    """Adam learning rate at the start."""
    milestones: tuple[float, ...] = (0.3, 0.5, 0.8)
    """fractions of training at which the lr is multiplied by lr_gamma."""
    lr_gamma: float = 0.2
    """lr factor applied at each milestone."""
    seed: int = 0
    """seed of the weights initialisation, patch sampling and synthetic rain."""
    device: str = "auto"
    """"auto" (CUDA when available, else CPU), "cpu" or "cuda[:N]"."""
    bf16: bool = False
    """bfloat16 autocast (CPU or CUDA): faster on recent CPUs, slightly less precise."""
    threads: int | None = None
    """torch CPU threads (None: torch's default)."""
    use_cra: bool = True
    """SAPNet: channel residual attention in the dilated units (ablation switch)."""
    use_dilation: bool = True
    """SAPNet: dilations 1, 2, 4, 8, 16 (False: 1 everywhere; ablation switch)."""
    stages: int = 6
    """recurrent stages of the network."""
    w_ssim: float = 1.0
    """weight of -SSIM (eq. 1)."""
    w_seg: float = 0.1
    """SAPNet: weight of the unsupervised segmentation loss (eq. 2); 0 switches it off."""
    w_pcl: float = 0.1
    """SAPNet: weight of the perceptual contrastive loss (eq. 3); 0 switches it off."""
    w_lpisl: float = 0.1
    """SAPNet: weight of the learned perceptual similarity loss (eq. 4); 0 switches it off."""
    seg_start: float = 0.0
    """fraction of training after which the segmentation loss is used (the official code: 0.5)."""
    vgg_weights: Path | None = None
    """ImageNet VGG-16 state dict for the perceptual losses (default: torchvision cache, else EfficientNet-Lite0)."""
    resnet_weights: Path | None = None
    """ImageNet ResNet-101 state dict for the segmenter (default: torchvision cache, else EfficientNet-Lite0)."""
    log_every: int = 10
    """iterations between rows of log.csv."""
    checkpoint_every: int = 200
    """iterations between checkpoints (one is also written at the end)."""
    resume: bool = False
    """continue from out_dir/checkpoint.pt when it exists."""
    init_from: Path | None = None
    """start from these network weights (a plain state dict, e.g. an earlier run's final model or an official
    checkpoint; a DataParallel "module." prefix is stripped) instead of a fresh initialisation: fine-tuning.
    The optimizer, lr schedule and iteration count start afresh; ignored when resuming from a checkpoint."""
    final_model: Path | None = None
    """where to write the shipped plain state dict (default out_dir/<model>_final.pt); sidecar: same name .json."""
    progress: bool = True
    """show a progress bar on the terminal."""

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict (paths as strings)."""
        return {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
                for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        kwargs = dict(data)
        for key in ("out_dir", "data", "synth_from", "val_dir", "vgg_weights", "resnet_weights", "final_model",
                    "init_from"):
            if kwargs.get(key) is not None:
                kwargs[key] = Path(kwargs[key])
        kwargs["milestones"] = tuple(kwargs.get("milestones", (0.3, 0.5, 0.8)))
        return cls(**kwargs)


@dataclass
class TrainResult:
    """What a finished run produced."""

    final_model: Path
    """plain state dict (loads with torch.load(..., weights_only=True))."""
    sidecar: Path
    """JSON with config, iterations, wall time, hardware, backbones, final losses."""
    log: Path
    """CSV log (one row per logged iteration)."""
    iterations: int
    wall_time_s: float
    final_losses: dict[str, float] = field(default_factory=dict)
    val_psnr: float | None = None
    backbones: dict[str, str] = field(default_factory=dict)
