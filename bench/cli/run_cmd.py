"""`bench run`: every chosen method over every chosen dataset, resumable."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from bench.cli.common import console, friendly_errors, settings_from, split_list


def resolve_method_specs(value: str) -> list[str]:
    """Canonical specs (``prenet`` -> ``prenet:rain100h``), in order, without repeats; unknown names and
    variants fail before any work, with a suggestion."""
    from bench.errors import BadInputError
    from bench.methods.registry import METHODS, default_method_specs, parse_method_spec, resolve_method_spec

    if value == "all":
        return default_method_specs(warn=lambda message: console.print(f"[yellow]{message}[/yellow]"))
    specs = []
    for spec in split_list(value):
        METHODS.entry(parse_method_spec(spec)[0])  # an unknown name fails here, with a suggestion
        try:
            specs.append(resolve_method_spec(spec))
        except BadInputError:  # unknown variants (UnknownNameError) still fail here
            specs.append(spec)  # a plugin that cannot load: the runner lists it as not run, with the reason
    return list(dict.fromkeys(specs))


def resolve_dataset_specs(value: str, settings) -> list[str]:
    from bench.data.cards import DatasetSpec, get_card, load_cards

    cards = load_cards(settings.cards_dir)
    if value == "default":
        return [n for n, c in cards.items() if c.embedded]
    if value == "all":
        return list(cards)
    specs = split_list(value)
    for spec in specs:
        get_card(DatasetSpec.parse(spec).name, settings)
    return specs


def resolve_profiles(value: str) -> list[str]:
    from bench.metrics.profiles import PROFILES, get_profile

    if value == "all":
        return list(PROFILES)
    return [get_profile(p).name for p in split_list(value)]


def resolve_tasks(value: str, task_model_specs: list[str]) -> tuple[list[str] | None, dict[str, str]]:
    """(tasks or None for auto, task -> task model spec); each --task-model is assigned to its own task."""
    from bench.tasks.registry import create_task_model, parse_tasks

    tasks = None if value.strip() == "auto" else parse_tasks(value)
    chosen: dict[str, str] = {}
    for spec in (s for item in task_model_specs for s in split_list(item)):
        model = create_task_model(spec)  # unknown names and variants fail before any work
        chosen[model.task] = spec
    return tasks, chosen


@friendly_errors
def run_command(
    methods: Optional[str] = typer.Option(None, help="all | NAME[:VARIANT][,...] (default from bench.toml)"),
    datasets: Optional[str] = typer.Option(None, help="default (embedded suite) | all | NAME[:WxH][,...]"),
    profile: Optional[str] = typer.Option(None, help="full-reference profile(s): NAME[,NAME] | all"),
    data_root: Optional[Path] = typer.Option(None, help="datasets folder (else BENCH_DATA_ROOT, bench.toml)"),
    weights_dir: Optional[Path] = typer.Option(None, help="weights folder (else BENCH_WEIGHTS_DIR, bench.toml)"),
    out: Optional[Path] = typer.Option(None, help="results folder: results.sqlite and outputs/"),
    limit: Optional[int] = typer.Option(None, min=1, help="at most N images per dataset"),
    device: Optional[str] = typer.Option(None, help="auto | cpu | cuda"),
    plugin: Optional[list[Path]] = typer.Option(None, help="local plugin file(s) to load"),
    config: Optional[Path] = typer.Option(None, help="bench.toml to use"),
    efficiency_size: Optional[str] = typer.Option(None, help="WIDTHxHEIGHT for params/FLOPs/ms per image, or off"),
    tasks: Optional[str] = typer.Option(None, help="downstream tasks: auto (labelled datasets) | none | detection,segmentation"),
    task_model: Optional[list[str]] = typer.Option(None, help="task model spec(s), e.g. yolov5:yolov5n.pt (`bench list task-models`)"),
    pseudo_labels: bool = typer.Option(False, "--pseudo-labels",
                                       help="score tasks on paired sets without labels against the task model's output on clean targets"),
    no_progress: bool = typer.Option(False, "--no-progress", help="hide progress bars"),
    precision: Optional[str] = typer.Option(None, help="fp32 (default; the only one for published figures) | bf16 | "
                                                       "fp16 (CUDA): what learned networks run in"),
    batch_size: Optional[int] = typer.Option(None, min=1, help="images of equal size per network call (default: 1 on "
                                                               "a CPU, 8 on a GPU)"),
    pipeline_depth: Optional[int] = typer.Option(None, min=0, help="batches read ahead of the network and written "
                                                                   "behind it (default 2; 0: one image at a time)"),
    executor: Optional[str] = typer.Option(None, help="where images are measured: local (this process, default) | ray"),
    ray_address: Optional[str] = typer.Option(None, help="--executor ray: auto | HOST:PORT of a running cluster "
                                                         "(default: start Ray on this machine)"),
    workers: Optional[int] = typer.Option(None, min=1, help="--executor ray: worker processes (default: CPUs / threads, "
                                                            "or GPUs / GPUs per worker)"),
    gpus_per_worker: Optional[float] = typer.Option(None, min=0, help="--executor ray: GPUs per worker, e.g. 1 or 0.5 "
                                                                      "(default: 1 when the cluster has GPUs)"),
    no_shared_fs: bool = typer.Option(False, "--no-shared-fs", help="--executor ray: workers send their outputs back to "
                                                                    "this machine (output folder not shared)"),
) -> None:
    """Run methods over datasets and store per-image results (finished images are skipped on rerun)."""
    from bench.executors import apply_executor_flags, make_executor
    from bench.results.store import ResultsStore
    from bench.runner.precision import parse_precision
    from bench.runner.runner import Runner

    settings = settings_from(config, data_root, weights_dir, out, device, plugin)
    if efficiency_size:
        settings.efficiency_size = efficiency_size
    settings.precision = parse_precision(precision or settings.precision)
    apply_executor_flags(settings, executor, ray_address, workers, gpus_per_worker, no_shared_fs, batch_size,
                         pipeline_depth)
    chosen_executor = make_executor(settings)
    method_specs = resolve_method_specs(methods or settings.methods)
    dataset_specs = resolve_dataset_specs(datasets or settings.datasets, settings)
    profiles = resolve_profiles(profile or settings.profile)
    task_list, task_models = resolve_tasks(tasks or settings.tasks, task_model or [])
    with ResultsStore(settings.results_db) as store:
        runner = Runner(settings, store, console=console, show_progress=not no_progress, executor=chosen_executor)
        summary = runner.run(method_specs, dataset_specs, profiles, limit, command=" ".join(["bench", *sys.argv[1:]]),
                             tasks=task_list, task_models=task_models, pseudo_labels=pseudo_labels)
    console.print(f"[bold]done[/bold]: {summary.computed} image(s) measured, {summary.skipped} already finished, "
                  f"{summary.failed} failed; results in {settings.results_db}")
    if summary.unavailable:
        console.print("[bold]not run[/bold] (listed, not dropped):")
        for _what, reason in summary.unavailable:
            console.print(f"  [yellow]-[/yellow] {reason}", highlight=False, soft_wrap=True)
    if summary.failed:
        console.print("Failed images are listed with file and reason by `bench report` (section Failures).")
