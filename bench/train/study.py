"""The SAPNet study behind ``bench train study``: SAPNet and PReNet trained with identical data, seeds and
budget, the paper's Table 2 ablation (M1..M6, :data:`ABLATION`), all evaluated with ``bench run`` and reported
from the results store (:mod:`bench.train.study_report`).

Layout of a study folder (``--out``)::

    runs/<run>/            one `bench train` run folder per model (checkpoint.pt, log.csv, <model>_final.pt/.json)
    bench.toml             the evaluation config: [checkpoints."sapnet:study"], ... and the data paths
    eval/results.sqlite    the `bench run` results store
    study.md|.csv|.tex     the report

Every step is resumable: a finished run is skipped, an interrupted one continues from its checkpoint, and
`bench run` skips images already measured.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from bench.errors import BadInputError
from bench.runner.precision import native_bf16
from bench.train.config import TrainConfig
from bench.train.trainer import resolve_device

_ABLATION_FILE = Path(__file__).resolve().parent / "ablation.toml"
_PAPER_MILESTONES = (0.3, 0.5, 0.8)


@dataclass(frozen=True)
class Budget:
    """What one model of the study is trained with (identical for every model of a part)."""

    iters: int
    """training iterations (batches)."""
    patch: int
    """patch side (px)."""
    batch: int
    """patches per batch."""
    lr: float
    """initial Adam learning rate (x0.2 at 30, 50 and 80 % of training unless a step switches decay off)."""
    bf16: bool = False
    """bfloat16 autocast where the device computes it natively (elsewhere it is emulated and far slower)."""
    stages: int = 6
    """recurrent stages of the networks."""

    def describe(self) -> str:
        return (f"{self.iters} iterations of {self.batch} x {self.patch}x{self.patch} px patches, Adam lr {self.lr:g}"
                f"{', bf16 autocast where native' if self.bf16 else ''}{f', {self.stages} stages' if self.stages != 6 else ''}")


#: recipe -> (budget of SAPNet and PReNet, budget of each ablation model)
RECIPES: dict[str, tuple[Budget, Budget]] = {
    # the paper: Adam 1e-4, batch 12, 100x100 patches, 100 epochs of 1,800 pairs (about 15,000 iterations)
    "paper": (Budget(15000, 100, 12, 1e-4), Budget(15000, 100, 12, 1e-4)),
    # what a shared 2-core CPU affords in about an hour (fine-tuning with --init-from-shipped); the ablation from
    # scratch at a much smaller budget, equal for all six
    "cpu": (Budget(600, 64, 6, 2e-4, bf16=True), Budget(120, 48, 4, 1e-3, bf16=True)),
    # the test suite: the whole study in seconds
    "tiny": (Budget(2, 24, 2, 1e-3, stages=2), Budget(1, 24, 2, 1e-3, stages=2)),
}


@dataclass(frozen=True)
class AblationStep:
    """One row of the paper's Table 2."""

    name: str
    label: str
    options: dict[str, Any]
    """TrainConfig fields of this model, the previous steps' included (``lr_decay`` False: constant lr)."""
    paper_psnr: float
    paper_ssim: float


def ablation_steps() -> tuple[str, list[AblationStep]]:
    """(source of the paper's figures, the steps M1..M6 with cumulative options) from ablation.toml."""
    raw = tomllib.loads(_ABLATION_FILE.read_text())
    steps, options = [], {}
    for item in raw["step"]:
        options = {**options, **item["options"]}
        steps.append(AblationStep(item["name"], item["label"], dict(options), float(item["paper_psnr"]),
                                  float(item["paper_ssim"])))
    return raw["source"], steps


@dataclass
class StudyConfig:
    """Everything the study depends on."""

    out_dir: Path
    """study folder (see the module docstring)."""
    synth_from: Path | None = None
    """folder of clean photographs: every patch gets fresh synthetic rain (``rain_preset``)."""
    data: Path | None = None
    """paired training folder (e.g. RainTrainH) instead of synth_from."""
    rain_preset: str = "light,heavy"
    """synthetic rain for synth_from: light | heavy | light,heavy (one drawn per patch)."""
    recipe: str = "cpu"
    """a key of RECIPES."""
    main_iters: int | None = None
    """override the recipe's iterations of SAPNet and PReNet."""
    ablation_iters: int | None = None
    """override the recipe's iterations of each ablation model."""
    parts: tuple[str, ...] = ("main", "ablation")
    """what to train and evaluate: "main" (SAPNet vs PReNet), "ablation" (M1..M6)."""
    init_from: dict[str, Path] = field(default_factory=dict)
    """main part: model ("sapnet"/"prenet") -> weights to fine-tune from (e.g. the shipped checkpoints)."""
    seed: int = 0
    """one seed for every model: same initialisation seed, same patches, same rain."""
    threads: int = 1
    """torch CPU threads per training run."""
    jobs: int = 1
    """training runs at once (e.g. 2: SAPNet and PReNet side by side, each on ``threads`` threads)."""
    device: str = "auto"
    time_limit_min: float | None = None
    """wall-clock limit per run (minutes); a run stopped by it is reported with its actual iterations."""
    main_datasets: str = "rain100l,embedded-heavy,embedded-light"
    """datasets of the SAPNet vs PReNet comparison (those without data are skipped with the reason)."""
    ablation_datasets: str = "embedded-heavy,rain100l"
    """datasets of the ablation table (the paper: Rain100H)."""
    compare: str = "rainy"
    """further method specs in the comparison table, e.g. "rainy,sapnet:official-2021-09-12"."""
    profile: str = "prenet-y"
    """full-reference profile of the tables."""
    limit: int | None = None
    """at most N images per dataset in the evaluation."""
    config: Path | None = None
    """bench.toml whose data root, weights dir, cards and cache the evaluation uses (default: the project's)."""
    progress: bool = True

    @property
    def budgets(self) -> tuple[Budget, Budget]:
        if self.recipe not in RECIPES:
            raise BadInputError(f"--recipe {self.recipe}: choose one of {', '.join(RECIPES)}")
        main, ablation = RECIPES[self.recipe]
        if self.main_iters:
            main = dataclasses.replace(main, iters=self.main_iters)
        if self.ablation_iters:
            ablation = dataclasses.replace(ablation, iters=self.ablation_iters)
        return main, ablation


@dataclass(frozen=True)
class StudyRun:
    """One model of the study: its row name, the spec it is evaluated as, and its training config."""

    name: str
    spec: str
    label: str
    part: str
    config: TrainConfig

    @property
    def final_model(self) -> Path:
        return Path(self.config.out_dir) / f"{self.config.model}_final.pt"


def plan_runs(study: StudyConfig) -> list[StudyRun]:
    """The training runs of the chosen parts, with identical data, seed and budget within each part."""
    main, ablation = study.budgets
    runs: list[StudyRun] = []
    if "main" in study.parts:
        for model, label in (("sapnet", "SAPNet (study)"), ("prenet", "PReNet (study)")):
            options = {"w_seg": 0.0, "w_pcl": 0.0, "w_lpisl": 0.0} if model == "prenet" else {}
            runs.append(StudyRun(model, f"{model}:study", label, "main",
                                 _train_config(study, model, main, f"main-{model}", options, study.init_from.get(model))))
    if "ablation" in study.parts:
        for step in ablation_steps()[1]:
            runs.append(StudyRun(step.name, f"sapnet:study-{step.name.lower()}", f"{step.name} {step.label}",
                                 "ablation", _train_config(study, "sapnet", ablation, f"ablation-{step.name}",
                                                           step.options, None)))
    return runs


def _train_config(study: StudyConfig, model: str, budget: Budget, folder: str, options: dict[str, Any],
                  init_from: Path | None) -> TrainConfig:
    options = dict(options)
    milestones = _PAPER_MILESTONES if options.pop("lr_decay", True) else ()
    return TrainConfig(
        model=model, out_dir=Path(study.out_dir) / "runs" / folder, data=study.data, synth_from=study.synth_from,
        rain_preset=study.rain_preset, iters=budget.iters, epochs=None, patch=budget.patch, batch=budget.batch,
        lr=budget.lr, milestones=milestones, seed=study.seed, device=study.device,
        bf16=budget.bf16 and native_bf16(resolve_device(study.device)),
        threads=study.threads, stages=budget.stages, time_limit_min=study.time_limit_min, init_from=init_from,
        resume=True, progress=False, checkpoint_every=50, **options)


# training -------------------------------------------------------------------------------------------------------

def check_training_data(study: StudyConfig, report: Callable[[str], None]) -> Path:
    """The training photographs against every evaluation set under the data root (`bench train check-data`), once
    per study folder: disjointness.md/.json beside the report. Near-duplicates stop the study, named."""
    from bench.config import load_settings
    from bench.train.data import find_pairs
    from bench.train.disjointness import check_disjointness

    out = Path(study.out_dir)
    target = out / "disjointness.md"
    if target.is_file():
        return target
    if study.synth_from is not None:
        folders = [Path(study.synth_from)]
    else:
        folders = sorted({clean.parent for _, clean in find_pairs(Path(study.data))})  # type: ignore[arg-type]
    data_root = load_settings(study.config).data_root
    report(f"checking the training images of {', '.join(map(str, folders))} against the evaluation sets under "
           f"{data_root} (once per study folder)")
    result = check_disjointness(folders, data_root)
    if result.flagged:
        names = ", ".join(f"{Path(c.file).name} (~{c.closest}, {c.distance})" for c in result.flagged[:10])
        raise BadInputError(f"bench train study: {len(result.flagged)} training image(s) are copies of evaluation "
                            f"images: {names}; remove them from the training folder and run again")
    result.write(target, out / "disjointness.json")
    return target


_VOLATILE = ("resume", "progress", "time_limit_min", "threads", "device", "checkpoint_every", "log_every")


def _identity(config: TrainConfig) -> dict[str, Any]:
    """The settings that define a run's result (not where or how fast it runs)."""
    return {k: v for k, v in config.to_json().items() if k not in _VOLATILE}


def run_state(run: StudyRun) -> str:
    """"done", "partial" (a checkpoint to resume) or "new"; BadInputError when the folder holds another run."""
    folder = Path(run.config.out_dir)
    recorded = folder / "study_run.json"
    if recorded.is_file() and json.loads(recorded.read_text()) != _identity(run.config):
        raise BadInputError(f"{folder}: holds a study run with other settings (see study_run.json); delete the folder "
                            f"or choose another --out")
    sidecar = run.final_model.with_suffix(".json")
    if sidecar.is_file() and json.loads(sidecar.read_text()).get("iterations", 0) >= run.config.iters:
        return "done"
    return "partial" if (folder / "checkpoint.pt").is_file() else "new"


def _train_one(config: TrainConfig) -> tuple[int, float]:
    """Worker entry: train one run (resuming its checkpoint); (iterations, wall seconds)."""
    from bench.train.trainer import train

    result = train(config)
    return result.iterations, result.wall_time_s


def train_runs(runs: list[StudyRun], jobs: int, report: Callable[[str], None],
               progress: bool = True) -> None:
    """Train every unfinished run, ``jobs`` at a time in separate processes; Ctrl-C checkpoints every run."""
    pending = []
    for run in runs:
        state = run_state(run)
        if state == "done":
            report(f"{run.name}: finished earlier ({run.final_model})")
            continue
        folder = Path(run.config.out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "study_run.json").write_text(json.dumps(_identity(run.config), indent=1) + "\n")
        pending.append(run)
    if not pending:
        return
    if jobs <= 1:  # in this process, with the trainer's own progress bar and Ctrl-C handling
        for run in pending:
            iterations, wall = _train_one(dataclasses.replace(run.config, progress=progress))
            report(f"{run.name}: {iterations} iterations in {wall / 60:.1f} min -> {run.final_model}")
        return
    context = get_context("spawn")  # a fresh interpreter per run: torch threads and signal handlers of its own
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=context) as pool, _Bars(pending, progress) as bars:
        futures: dict[Future, StudyRun] = {pool.submit(_train_one, run.config): run for run in pending}
        waiting = set(futures)
        try:
            while waiting:
                done, waiting = wait(waiting, timeout=5, return_when=FIRST_COMPLETED)
                bars.refresh()
                for future in done:
                    run = futures[future]
                    iterations, wall = future.result()
                    report(f"{run.name}: {iterations} iterations in {wall / 60:.1f} min -> {run.final_model}")
        except KeyboardInterrupt:
            report("interrupted: every run saves a checkpoint; run the same command again to continue")
            raise


class _Bars:
    """One progress bar per training run, read from each run's log.csv (the runs are other processes)."""

    def __init__(self, runs: list[StudyRun], enabled: bool) -> None:
        self.runs, self.enabled, self.progress, self.tasks = runs, enabled, None, {}

    def __enter__(self) -> _Bars:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn())
            self.tasks = {run.name: self.progress.add_task(run.name, total=run.config.iters) for run in self.runs}
            self.progress.start()
            self.refresh()
        return self

    def refresh(self) -> None:
        if self.progress is None:
            return
        for run in self.runs:
            self.progress.update(self.tasks[run.name], completed=_logged_iteration(Path(run.config.out_dir)))

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.refresh()
            self.progress.stop()


def _logged_iteration(folder: Path) -> int:
    try:
        lines = (folder / "log.csv").read_text().strip().splitlines()
        return int(lines[-1].split(",", 1)[0]) if len(lines) > 1 else 0
    except (OSError, ValueError):
        return 0


# evaluation -----------------------------------------------------------------------------------------------------

def write_eval_config(study: StudyConfig, runs: list[StudyRun]) -> Path:
    """bench.toml of the evaluation: the user's data paths, the study's checkpoints as method specs."""
    from bench.config import load_settings

    settings = load_settings(study.config)
    lines = [
        "# Written by `bench train study`: evaluates the study's checkpoints with `bench run`.",
        "[paths]",
        f"data_root = {json.dumps(str(settings.data_root))}",
        f"weights_dir = {json.dumps(str(settings.weights_dir))}",
        'output_dir = "eval"',
        f"cache_dir = {json.dumps(str(settings.cache_dir))}",
        f"cards_dir = {json.dumps(str(settings.cards_dir))}",
        "",
        "[run]",
        f"device = {json.dumps(study.device)}",
        f"profile = {json.dumps(study.profile)}",
        'efficiency_size = "off"',
        'tasks = "none"',
        f"download = {'true' if settings.download else 'false'}",
        "",
    ]
    for run in runs:
        lines += [f'[checkpoints."{run.spec}"]', f"file = {json.dumps(str(run.final_model.resolve()))}", ""]
    path = Path(study.out_dir) / "bench.toml"
    path.write_text("\n".join(lines))
    return path


def evaluate(study: StudyConfig, runs: list[StudyRun], report: Callable[[str], None]) -> Path:
    """``bench run`` over the study's checkpoints (and ``compare``), one call per part; returns the eval config."""
    config = write_eval_config(study, runs)
    compare = [s.strip() for s in study.compare.split(",") if s.strip()]
    for part, datasets in (("main", study.main_datasets), ("ablation", study.ablation_datasets)):
        specs = [run.spec for run in runs if run.part == part]
        if not specs:
            continue
        methods = ",".join(dict.fromkeys([*compare, *specs]))
        cmd = [sys.executable, "-m", "bench", "run", "--config", str(config), "--methods", methods,
               "--datasets", _available_datasets(datasets, config, report), "--profile", study.profile]
        if study.limit:
            cmd += ["--limit", str(study.limit)]
        if not study.progress:
            cmd.append("--no-progress")
        report("$ " + " ".join(cmd[2:]))
        started = time.monotonic()
        done = subprocess.run(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        if done.returncode != 0:
            raise BadInputError(f"bench train study: the evaluation of part {part!r} failed (exit {done.returncode}); "
                                f"see the output above, fix it and run the same command again (finished work is kept)")
        report(f"evaluated part {part} in {(time.monotonic() - started) / 60:.1f} min")
    return config


def _available_datasets(value: str, config: Path, report: Callable[[str], None]) -> str:
    """The listed datasets whose data is present (embedded ones always are); the others are reported, not fatal."""
    from bench.config import load_settings
    from bench.data.cards import availability, get_card

    settings = load_settings(config)
    kept = []
    for name in (s.strip() for s in value.split(",") if s.strip()):
        reason = availability(get_card(name, settings), settings)
        if reason is None:
            kept.append(name)
        else:
            report(f"dataset {name} left out of the study: {reason}")
    if not kept:
        raise BadInputError(f"bench train study: none of the datasets {value} is available here; add data or choose "
                            f"others with --main-datasets / --ablation-datasets")
    return ",".join(kept)


def run_study(study: StudyConfig, report: Callable[[str], None] = print) -> dict[str, Path]:
    """Train (or resume), evaluate and report; returns the report files by format."""
    from bench.train.study_report import write_study_report

    if (study.data is None) == (study.synth_from is None):
        raise BadInputError("bench train study: give exactly one of --data (paired folder) or --synth-from (clean photos)")
    runs = plan_runs(study)
    Path(study.out_dir).mkdir(parents=True, exist_ok=True)
    main, ablation = study.budgets
    report(f"study in {study.out_dir}: {len(runs)} model(s); main budget {main.describe()}; "
           f"ablation budget {ablation.describe()}")
    check_training_data(study, report)
    train_runs(runs, study.jobs, report, study.progress)
    config = evaluate(study, runs, report)
    return write_study_report(study, runs, config)
