"""Reading DDN's official ``network.mat`` into :class:`~methods.ddn.network.DDNNetwork`.

The file holds one struct ``model`` with seven 1x26 cell arrays, one cell per layer:
``weight`` (3x3xCinxCout, axes width, height, in, out as exported from Caffe), ``bias`` (Cout x 1),
``BatchNorm_1`` / ``BatchNorm_2`` (running mean and variance, each multiplied by the moving-average factor),
``BatchNorm_3`` (that factor, 1x1), ``Scale_1`` / ``Scale_2`` (batch-norm gamma and beta).
Every array must be used exactly once; anything missing, extra or of the wrong shape is an error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
import torch

from bench.errors import BadInputError
from methods.ddn.network import DDNNetwork

FIELDS = ("weight", "bias", "BatchNorm_1", "BatchNorm_2", "BatchNorm_3", "Scale_1", "Scale_2")
LAYERS = 26


def _cells(model: np.ndarray, field: str, source: str) -> list[np.ndarray]:
    cells = np.asarray(model[field]).ravel()
    if cells.dtype != object or len(cells) != LAYERS:
        raise BadInputError(f"{source}: model.{field} should be a 1x{LAYERS} cell array, got shape {cells.shape}")
    return [np.asarray(c, dtype=np.float64) for c in cells]


def read_ddn_mat(path: Path | str) -> dict[str, list[np.ndarray]]:
    """Cell arrays of ``network.mat``, field -> 26 float64 arrays. Raises BadInputError naming what is wrong."""
    source = f"DDN weights {path}"
    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises several types for corrupt files
        raise BadInputError(f"{source}: cannot be read as a MATLAB file ({type(exc).__name__}: {exc}); "
                            f"download network.mat again") from exc
    variables = sorted(k for k in mat if not k.startswith("__"))
    if variables != ["model"]:
        raise BadInputError(f"{source}: expected exactly one variable 'model', found {variables}")
    model = mat["model"]
    if model.dtype.names is None or model.size != 1:
        raise BadInputError(f"{source}: 'model' is not a 1x1 struct")
    names = set(model.dtype.names)
    missing, unused = sorted(set(FIELDS) - names), sorted(names - set(FIELDS))
    if missing or unused:
        raise BadInputError(f"{source}: struct fields do not match DDN: missing {missing}, unused {unused}")
    model = model.ravel()[0]
    return {field: _cells(model, field, source) for field in FIELDS}


def ddn_state_dict(cells: dict[str, list[np.ndarray]], source: str = "network.mat") -> dict[str, torch.Tensor]:
    """Map the 7x26 arrays onto :class:`DDNNetwork`'s state dict, checking every shape."""
    net = DDNNetwork()
    slots = net.net.layer_slots()
    prefix = {id(m): name for name, m in net.named_modules()}
    if len(slots) != LAYERS:
        raise BadInputError(f"{source}: the network has {len(slots)} layers, the file {LAYERS}")
    state: dict[str, torch.Tensor] = {}
    used: set[tuple[str, int]] = set()

    def put(key: str, field: str, i: int, shape: tuple[int, ...], divisor: float = 1.0) -> None:
        value = cells[field][i]
        if value.size != int(np.prod(shape)):
            raise BadInputError(f"{source}: {field}{{{i + 1}}} has shape {value.shape}, expected {shape}")
        state[key] = torch.from_numpy(np.ascontiguousarray(value).reshape(shape) / divisor).float()
        used.add((field, i))

    for i, (conv, bn) in enumerate(slots):
        cout, cin = conv.out_channels, conv.in_channels
        w = cells["weight"][i]
        used.add(("weight", i))
        if w.shape != (3, 3, cin, cout):
            raise BadInputError(f"{source}: weight{{{i + 1}}} has shape {w.shape}, expected (3, 3, {cin}, {cout})")
        # (width, height, in, out) -> (out, in, height, width)
        state[f"{prefix[id(conv)]}.weight"] = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 1, 0))).float()
        put(f"{prefix[id(conv)]}.bias", "bias", i, (cout,))
        factor = cells["BatchNorm_3"][i]
        if factor.size != 1 or not float(factor.ravel()[0]) > 0:
            raise BadInputError(f"{source}: BatchNorm_3{{{i + 1}}} should be one positive number, got {factor.ravel()[:3]}")
        f = float(factor.ravel()[0])
        used.add(("BatchNorm_3", i))
        c = bn.num_features
        put(f"{prefix[id(bn)]}.running_mean", "BatchNorm_1", i, (c,), divisor=f)
        put(f"{prefix[id(bn)]}.running_var", "BatchNorm_2", i, (c,), divisor=f)
        put(f"{prefix[id(bn)]}.weight", "Scale_1", i, (c,))
        put(f"{prefix[id(bn)]}.bias", "Scale_2", i, (c,))
        state[f"{prefix[id(bn)]}.num_batches_tracked"] = torch.tensor(0)
    unused = sorted(f"{field}{{{i + 1}}}" for field in cells for i in range(len(cells[field])) if (field, i) not in used)
    if unused:
        raise BadInputError(f"{source}: arrays not used by DDN: {', '.join(unused)}")
    return state


def load_ddn_mat(path: Path | str) -> DDNNetwork:
    """Build :class:`DDNNetwork` from an official ``network.mat`` (strict: every array used, none missing)."""
    net = DDNNetwork()
    state = ddn_state_dict(read_ddn_mat(path), source=f"DDN weights {path}")
    net.load_state_dict(state, strict=True)
    return net.eval()
