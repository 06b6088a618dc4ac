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
    if not options.pop("lr_decay"):
        options["milestones"] = ()
    out = options.pop("out") or Path("runs") / "train" / model
    config = TrainConfig(model=model, out_dir=out, use_cra=use_cra, use_dilation=use_dilation, **options)
    from bench.runner.precision import native_bf16
    from bench.train.trainer import resolve_device

    if config.bf16 and not native_bf16(resolve_device(config.device)):
        console.print("[yellow]--bf16: this device has no native bfloat16 (CPU without AVX512-BF16 or AMX); "
                      "autocast emulates it and is many times slower than float32: leave --bf16 off here[/yellow]")
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
        lr_decay: bool = typer.Option(True, "--lr-decay/--no-lr-decay", help="lr x0.2 at 30, 50 and 80 % of training "
                                                                          "(off: constant lr, an ablation step)"),
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


@train_app.command("study")
@friendly_errors
def study_command(
    synth_from: Optional[Path] = typer.Option(None, help="folder of clean photos: fresh synthetic rain per patch"),
    data: Optional[Path] = typer.Option(None, help="paired training folder instead (e.g. RainTrainH)"),
    rain_preset: str = typer.Option("light,heavy", help="synthetic rain: light | heavy | light,heavy"),
    recipe: str = typer.Option("cpu", help="budget: paper (15,000 iterations, batch 12, 100 px) | cpu | tiny"),
    main_iters: Optional[int] = typer.Option(None, min=1, help="override the recipe's SAPNet/PReNet iterations"),
    ablation_iters: Optional[int] = typer.Option(None, min=1, help="override the recipe's iterations per ablation model"),
    parts: str = typer.Option("main,ablation", help="main (SAPNet vs PReNet) and/or ablation (M1..M6)"),
    init_from_shipped: bool = typer.Option(False, "--init-from-shipped",
                                           help="main part: fine-tune the shipped sapnet:ours / prenet:ours weights"),
    seed: int = typer.Option(0, help="one seed for every model (initialisation, patches, rain)"),
    threads: int = typer.Option(1, min=1, help="torch CPU threads per training run"),
    jobs: int = typer.Option(1, min=1, help="training runs at once (2: SAPNet and PReNet side by side)"),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    time_limit_min: Optional[float] = typer.Option(None, help="wall-clock limit per training run (minutes)"),
    main_datasets: str = typer.Option("rain100l,embedded-heavy,embedded-light", help="datasets of the comparison"),
    ablation_datasets: str = typer.Option("embedded-heavy,rain100l", help="datasets of the ablation table"),
    compare: str = typer.Option("rainy", help="further method specs in the comparison table"),
    profile: str = typer.Option("prenet-y", help="full-reference profile of the tables"),
    limit: Optional[int] = typer.Option(None, min=1, help="at most N images per dataset in the evaluation"),
    config: Optional[Path] = typer.Option(None, help="bench.toml with the data paths the evaluation uses"),
    out: Path = typer.Option(Path("runs/study"), help="study folder (runs, evaluation store, report)"),
    no_progress: bool = typer.Option(False, "--no-progress", help="hide progress bars"),
) -> None:
    """The whole SAPNet study: SAPNet and PReNet with identical data, seeds and budget, the paper's Table 2
    ablation, evaluated with `bench run` and reported (study.md/.csv/.tex). Rerun the same command to resume."""
    from bench.train.study import StudyConfig, run_study

    for flag, path in (("--synth-from", synth_from), ("--data", data)):
        if path is not None and not path.is_dir():
            raise BadInputError(f"{flag} {path}: folder not found")
    chosen = tuple(p.strip() for p in parts.split(",") if p.strip())
    if not chosen or set(chosen) - {"main", "ablation"}:
        raise BadInputError(f"--parts {parts}: choose main, ablation or main,ablation")
    shipped = {}
    if init_from_shipped:
        from methods.prenet.plugin import PReNet
        from methods.sapnet.plugin import SAPNet

        shipped = {"sapnet": SAPNet.shipped["ours"], "prenet": PReNet.shipped["ours"]}
    study = StudyConfig(out_dir=out, synth_from=synth_from, data=data, rain_preset=rain_preset, recipe=recipe,
                        main_iters=main_iters, ablation_iters=ablation_iters, parts=chosen, init_from=shipped,
                        seed=seed, threads=threads, jobs=jobs, device=device, time_limit_min=time_limit_min,
                        main_datasets=main_datasets, ablation_datasets=ablation_datasets, compare=compare,
                        profile=profile, limit=limit, config=config, progress=not no_progress)
    paths = run_study(study, report=lambda line: console.print(line, highlight=False, soft_wrap=True))
    console.print(f"study report: {paths['md']} (also {paths['csv'].name}, {paths['latex'].name})")


def _register_check_data() -> None:
    from bench.cli.train_data_cmd import check_data

    train_app.command("check-data")(check_data)


_register_check_data()
