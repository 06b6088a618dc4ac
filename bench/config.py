"""Settings: bench.toml, then environment variables, then command-line flags (last wins)."""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.errors import BadInputError

PROJECT_ROOT = Path(__file__).resolve().parents[1]


#: settings that choose where work runs, not what is computed (left out of the config hash)
EXECUTION_SETTINGS = ("executor", "ray_address", "workers", "gpus_per_worker", "shared_fs", "batch_size",
                      "pipeline_depth")


@dataclass
class Settings:
    """Resolved settings of one invocation. All paths are absolute."""

    data_root: Path
    weights_dir: Path
    output_dir: Path
    cache_dir: Path
    cards_dir: Path
    device: str = "auto"
    threads: int = 0
    methods: str = "all"
    datasets: str = "default"
    profile: str = "matlab-y"
    download: bool = True
    efficiency_size: str = "481x321"  # WIDTHxHEIGHT of the efficiency measurement, or "off"
    precision: str = "fp32"  # fp32 | bf16 | fp16: what learned networks run in (bench/runner/precision.py)
    tasks: str = "auto"  # downstream tasks: auto (each labelled dataset's own task) | none | detection,segmentation
    task_models: dict[str, str] = field(default_factory=dict)  # task -> task model spec ([tasks] in bench.toml)
    plugin_files: list[Path] = field(default_factory=list)
    precomputed: dict[str, Path] = field(default_factory=dict)
    #: [checkpoints."sapnet:NAME"] file = "x.pt": a `bench train` checkpoint, run as method spec sapnet:NAME
    checkpoints: dict[str, Path] = field(default_factory=dict)
    config_file: Path | None = None
    # where the work runs (never what is computed, so not part of the config hash); see bench/executors/
    executor: str = "local"  # local | ray
    ray_address: str = ""  # "" starts Ray on this machine; auto | HOST:PORT joins a running cluster
    workers: int = 0  # Ray workers; 0: the cluster's CPUs / threads per worker, or its GPUs / GPUs per worker
    gpus_per_worker: float | None = None  # None: 1 when the cluster has GPUs (and device is not cpu), else 0
    shared_fs: bool = True  # workers write outputs to output_dir themselves (else they ship them to the driver)
    batch_size: int = 0  # local executor: images per network call; 0: 1 on a CPU, 8 on a GPU
    pipeline_depth: int = 2  # local executor: batches read ahead and written behind the network; 0: one at a time

    @property
    def results_db(self) -> Path:
        return self.output_dir / "results.sqlite"

    @property
    def outputs_dir(self) -> Path:
        return self.output_dir / "outputs"

    def config_hash(self) -> str:
        data = {k: str(v) for k, v in asdict(self).items() if k not in EXECUTION_SETTINGS}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def find_config(explicit: Path | None = None) -> Path | None:
    """bench.toml: the explicit path, $BENCH_CONFIG, the current folder or a parent, then the project's."""
    if explicit is not None:
        if not explicit.is_file():
            raise BadInputError(f"config file {explicit}: not found. Pass an existing bench.toml to --config.")
        return explicit.resolve()
    env = os.environ.get("BENCH_CONFIG")
    if env:
        path = Path(env)
        if not path.is_file():
            raise BadInputError(f"BENCH_CONFIG={env}: file not found. Point it at a bench.toml or unset it.")
        return path.resolve()
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "bench.toml").is_file():
            return (folder / "bench.toml").resolve()
    if (PROJECT_ROOT / "bench.toml").is_file():
        return PROJECT_ROOT / "bench.toml"
    return None


def load_settings(
    config: Path | None = None,
    *,
    data_root: Path | None = None,
    weights_dir: Path | None = None,
    output_dir: Path | None = None,
    device: str | None = None,
) -> Settings:
    """Read bench.toml and apply environment variables and flags (flags win)."""
    path = find_config(config)
    raw: dict = {}
    base = Path.cwd()
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise BadInputError(f"{path}: invalid TOML ({exc}). Fix the file or pass another with --config.") from exc
        base = path.parent
    paths = raw.get("paths", {})
    run = raw.get("run", {})

    def resolve(value: str | Path | None, default: str) -> Path:
        p = Path(value if value is not None else default).expanduser()
        return (p if p.is_absolute() else base / p).resolve()

    def from_env(flag: Path | None, env: str, key: str, default: str) -> Path:
        if flag is not None:
            return Path(flag).expanduser().resolve()
        if os.environ.get(env):
            return Path(os.environ[env]).expanduser().resolve()
        return resolve(paths.get(key), default)

    precomputed = {
        name: resolve(section.get("folder"), ".") for name, section in raw.get("precomputed", {}).items()
    }
    checkpoints = {
        spec: resolve(section.get("file"), ".") for spec, section in raw.get("checkpoints", {}).items()
    }
    return Settings(
        data_root=from_env(data_root, "BENCH_DATA_ROOT", "data_root", "data"),
        weights_dir=from_env(weights_dir, "BENCH_WEIGHTS_DIR", "weights_dir", "weights"),
        output_dir=from_env(output_dir, "BENCH_OUTPUT_DIR", "output_dir", "reports"),
        cache_dir=resolve(paths.get("cache_dir"), ".cache/bench"),
        cards_dir=resolve(paths.get("cards_dir"), str(PROJECT_ROOT / "datasets")),
        device=device or run.get("device", "auto"),
        threads=int(run.get("threads", 0)),
        methods=str(run.get("methods", "all")),
        datasets=str(run.get("datasets", "default")),
        profile=str(run.get("profile", "matlab-y")),
        efficiency_size=str(run.get("efficiency_size", "481x321")),
        precision=str(run.get("precision", "fp32")),
        download=bool(run.get("download", True)) and os.environ.get("BENCH_NO_DOWNLOAD", "") not in ("1", "true"),
        tasks=str(run.get("tasks", "auto")),
        task_models={k: str(v) for k, v in raw.get("tasks", {}).items()},
        plugin_files=[resolve(p, ".") for p in raw.get("plugins", {}).get("files", [])],
        precomputed=precomputed,
        checkpoints=checkpoints,
        config_file=path,
        executor=str(run.get("executor", "local")),
        ray_address=str(run.get("ray_address", "")),
        workers=int(run.get("workers", 0)),
        gpus_per_worker=float(run["gpus_per_worker"]) if "gpus_per_worker" in run else None,
        shared_fs=bool(run.get("shared_fs", True)),
        batch_size=int(run.get("batch_size", 0)),
        pipeline_depth=int(run.get("pipeline_depth", 2)),
    )
