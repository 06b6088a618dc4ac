"""`bench train sapnet|prenet`: the paper's recipe (Adam 1e-4, batch 12, lr x0.2 at 30/50/80 %)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bench.cli.common import console, friendly_errors
from bench.errors import BadInputError

train_app = typer.Typer(help="Train SAPNet or PReNet (same trainer, same data and budget).", no_args_is_help=True)


def _train(model: str, **options) -> None:
    from bench.train import TrainConfig, train

    if (options["data"] is None) == (options["synth_from"] is None):
        raise BadInputError("bench train: give exactly one of --data (paired folder) or --synth-from (clean photos)")
    for flag in ("data", "synth_from", "val_dir"):
        path = options[flag]
        if path is not None and not Path(path).is_dir():
            raise BadInputError(f"--{flag.replace('_', '-')} {path}: folder not found")
    use_cra, use_dilation = not options.pop("no_cra"), not options.pop("no_dilation")
    out = options.pop("out") or Path("runs") / "train" / model
    config = TrainConfig(model=model, out_dir=out, use_cra=use_cra, use_dilation=use_dilation, **options)
    result = train(config)
    console.print(f"trained {result.iterations} iterations in {result.wall_time_s / 60:.1f} min; "
                  f"model {result.final_model}, log {result.log}"
                  + (f", validation PSNR {result.val_psnr:.2f} dB" if result.val_psnr is not None else ""))


def _command(model: str):
    @friendly_errors
    def command(
        data: Optional[Path] = typer.Option(None, help="paired training folder (any supported paired layout)"),
        synth_from: Optional[Path] = typer.Option(None, help="folder of clean photos: fresh synthetic rain every epoch"),
        rain_preset: str = typer.Option("light", help="synthetic rain preset: light | heavy | light,heavy (one drawn per patch)"),
        val_dir: Optional[Path] = typer.Option(None, help="paired folder for validation PSNR (Y, dB)"),
        iters: Optional[int] = typer.Option(None, min=1, help="training iterations (overrides --epochs)"),
        epochs: Optional[int] = typer.Option(100, min=1, help="epochs (the paper: 100)"),
        time_limit_min: Optional[float] = typer.Option(None, help="wall-clock budget in minutes"),
        patch: int = typer.Option(100, min=8, help="patch side, px"),
        batch: int = typer.Option(12, min=1, help="patches per batch"),
        lr: float = typer.Option(1e-4, help="initial Adam learning rate"),
        seed: int = typer.Option(0),
        device: str = typer.Option("auto", help="auto | cpu | cuda"),
        bf16: bool = typer.Option(False, help="bfloat16 autocast"),
        threads: Optional[int] = typer.Option(None, help="torch CPU threads"),
        no_cra: bool = typer.Option(False, "--no-cra", help="ablation: switch channel attention off (SAPNet)"),
        no_dilation: bool = typer.Option(False, "--no-dilation", help="ablation: dilation 1 everywhere (SAPNet)"),
        w_ssim: float = typer.Option(1.0, help="weight of -SSIM"),
        w_seg: float = typer.Option(0.1, help="weight of the segmentation loss (SAPNet; 0 = off)"),
        w_pcl: float = typer.Option(0.1, help="weight of the perceptual contrastive loss (SAPNet; 0 = off)"),
        w_lpisl: float = typer.Option(0.1, help="weight of the learned perceptual similarity loss (SAPNet; 0 = off)"),
        vgg_weights: Optional[Path] = typer.Option(None, help="ImageNet VGG-16 state dict (else torchvision cache)"),
        resnet_weights: Optional[Path] = typer.Option(None, help="ImageNet ResNet-101 state dict (else cache)"),
        out: Optional[Path] = typer.Option(None, help="run folder (default runs/train/<model>)"),
        final_model: Optional[Path] = typer.Option(None, help="where to write the final plain state dict"),
        resume: bool = typer.Option(False, help="continue from the run folder's checkpoint"),
        init_from: Optional[Path] = typer.Option(None, help="fine-tune: start from these weights (state dict)"),
    ) -> None:
        options = {k: v for k, v in locals().items() if k != "model"}
        if model == "prenet":
            options.update(w_seg=0.0, w_pcl=0.0, w_lpisl=0.0)
        _train(model, **options)

    command.__doc__ = f"Train {'SAPNet' if model == 'sapnet' else 'PReNet'} with the paper's recipe."
    return command


train_app.command("sapnet")(_command("sapnet"))
train_app.command("prenet")(_command("prenet"))
