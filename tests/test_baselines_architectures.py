"""MPRNet, MSPFN, EfficientDerain, Syn2Real and MOSS adapters against their official definitions.

The constants below were measured on the official code (PyTorch models of swz30/MPRNet, tsingqguo/
efficientderain, rajeevyasarla/Syn2Real, hhb072/MOSS; the TensorFlow graph of kuijiang94/MSPFN run in
TF1-compat mode): parameter counts, a SHA-256 of the sorted ``name:shape`` list of the official state dict
(TF variables for MSPFN), and outputs for deterministic "formula" weights and input (see
:func:`formula_state`). The adapters must reproduce them; the official checkpoints themselves cannot be
had here, so strict loading is checked with generated checkpoints in each official file format.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.methods.api import PrecomputedMethod
from methods.effderain.network import EfficientDerainNet
from methods.effderain.plugin import EffDerain
from methods.moss.network import MossNet
from methods.moss.plugin import MOSS
from methods.mprnet.network import MPRNetModel
from methods.mprnet.plugin import MPRNet
from methods.mspfn.network import MSPFNNet, state_dict_from_tf, tf_variable_table
from methods.mspfn.plugin import DATA, INDEX, MSPFN
from methods.mspfn.tf_checkpoint import read_tf_checkpoint
from methods.syn2real.network import Syn2RealNet
from methods.syn2real.plugin import Syn2Real, official_size

torch.set_num_threads(2)
CPU = torch.device("cpu")
POINTS = [(0, 0, 0), (1, 5, 17), (2, 31, 31), (0, 16, 9)]

# name -> (network class, official parameter count, sha256 of the official sorted "key:shape" lines)
OFFICIAL = {
    "mprnet": (MPRNetModel, 3_637_249, "473ce7769ec5d8b11eb03bf32e7c825408d77620a56198370fd4f0271fc4859e"),
    "effderain": (EfficientDerainNet, 27_395_406, "1448ce041fa92a815f00838ee915fe03516261f34c7253da327f46c7f4bc715e"),
    "syn2real": (Syn2RealNet, 2_618_294, "dd7c81d20e489456035a4ba157c9d6756c60fb2a05e71c88b40bbb9c345527dc"),
    "moss": (MossNet, 2_855_939, "3d9dacc9c8376258b571be945672e70f55d821fb857c6d720a6f8ece986b47e0"),
}
MSPFN_PARAMS = 15_823_424  # printed by the official test script for its 859 trainable variables
MSPFN_TF_FINGERPRINT = "474a0e313a1061e16e42ccdedd6a5d24ae225901e00732698375109cb4cc0e68"

# official outputs for formula weights on formula_input(32, 32): (weight gain, mean, std, values at POINTS)
OFFICIAL_OUTPUTS = {
    "mprnet": (1.0, 0.5122620463371277, 0.36757224798202515,
               [0.4602665603160858, 0.7563215494155884, 0.6792140007019043, 0.08123549818992615]),
    "effderain": (1.0, -0.11684433370828629, 0.26991257071495056,
                  [0.10118678212165833, 0.20625464618206024, -0.2674848139286041, -0.014157583937048912]),
    "syn2real": (1.0, 0.5229833126068115, 0.009261062368750572,
                 [0.5266937017440796, 0.5212998390197754, 0.5239152908325195, 0.5353091955184937]),
    "moss": (0.3, -0.09124771505594254, 0.009374042972922325,
             [-0.09303167462348938, -0.10301244258880615, -0.08298899233341217, -0.09165487438440323]),
}


def formula_state(state: dict[str, torch.Tensor], gain: float = 1.0) -> dict[str, torch.Tensor]:
    """Deterministic weights: sines indexed by the key's rank in sorted order, scaled by 1/sqrt(fan-in)."""
    out = {}
    for i, key in enumerate(sorted(state)):
        t = state[key]
        if not t.is_floating_point():
            out[key] = t.clone()
            continue
        n = t.numel()
        base = torch.sin(0.37 * torch.arange(n, dtype=torch.float64) + i)
        if key.endswith("running_var"):
            v = 1 + 0.5 * base**2
        elif n == 1:
            v = torch.full((1,), 0.25, dtype=torch.float64)
        elif t.ndim >= 2:
            v = gain * base / float(np.sqrt(n / t.shape[0]))
        else:
            v = 0.1 * base
        out[key] = v.reshape(t.shape).to(t.dtype)
    return out


def formula_input(h: int, w: int) -> torch.Tensor:
    hh, ww = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    return torch.stack([0.5 + 0.5 * torch.sin(0.05 * hh * ww + 0.3 * hh + c) for c in range(3)])[None].float()


def fingerprint(items) -> str:
    lines = "\n".join(f"{k}:{'x'.join(map(str, s))}" for k, s in sorted(items))
    return hashlib.sha256(lines.encode()).hexdigest()


@pytest.fixture(scope="module")
def nets() -> dict[str, torch.nn.Module]:
    return {name: cls() for name, (cls, _, _) in OFFICIAL.items()}


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_parameter_count_and_state_dict_names_match_official(nets, name):
    _, params, sha = OFFICIAL[name]
    net = nets[name]
    assert sum(p.numel() for p in net.parameters()) == params
    assert fingerprint((k, tuple(v.shape)) for k, v in net.state_dict().items()) == sha


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_forward_matches_official_numbers(nets, name):
    gain, mean, std, values = OFFICIAL_OUTPUTS[name]
    net = nets[name]
    net.load_state_dict(formula_state(net.state_dict(), gain), strict=True)
    net.eval()
    x = formula_input(32, 32)
    with torch.no_grad():
        if name == "mprnet":
            y = net(x)[0]
        elif name == "effderain":
            y = net(x)
        elif name == "syn2real":
            y = net(x * 2 - 1)[0]
        else:
            y = net(x * 2 - 1)
    y = y[0]
    assert y.shape == (3, 32, 32)
    assert float(y.mean()) == pytest.approx(mean, rel=1e-4, abs=1e-6)
    assert float(y.std()) == pytest.approx(std, rel=1e-4, abs=1e-6)
    assert [float(y[p]) for p in POINTS] == pytest.approx(values, rel=1e-4, abs=1e-5)


def _load_plugin(method, files: dict[str, Path]):
    method.weights = files
    method.load(CPU)
    return method


def _check_loaded_and_runs(method, expected: dict[str, torch.Tensor], size=(27, 35)) -> None:
    loaded = method.net.state_dict()
    key = sorted(expected)[len(expected) // 2]
    assert torch.equal(loaded[key], expected[key])  # weights really came from the file
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(0))
    y = method.derain(x)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert float(y.min()) >= 0 and float(y.max()) <= 1


def test_mprnet_plugin_loads_official_checkpoint_layout(nets, tmp_path):
    state = formula_state(nets["mprnet"].state_dict(), 0.3)
    path = tmp_path / "model_deraining.pth"  # official layout: {"epoch", "state_dict" (DataParallel), "optimizer"}
    torch.save({"epoch": 250, "state_dict": {f"module.{k}": v for k, v in state.items()}, "optimizer": {}}, path)
    method = _load_plugin(MPRNet(), {"model_deraining.pth": path})
    _check_loaded_and_runs(method, state)


def test_effderain_plugin_loads_plain_state_dict(nets, tmp_path):
    state = formula_state(nets["effderain"].state_dict(), 0.3)
    method = EffDerain("v3_spa")
    path = tmp_path / "v3_SPA.pth"
    torch.save(state, path)
    assert [w.filename for w in method.required_weights()] == ["v3_SPA.pth"]
    _check_loaded_and_runs(_load_plugin(method, {"v3_SPA.pth": path}), state)
    assert set(EffDerain.info.variants) == {f"{v}_{d}" for v in ("v3", "v4") for d in ("rain100h", "rain1400", "spa")}


def test_syn2real_plugin_loads_dataparallel_checkpoint(nets, tmp_path):
    state = formula_state(nets["syn2real"].state_dict(), 0.3)
    path = tmp_path / "derain_best"
    torch.save({f"module.{k}": v for k, v in state.items()}, path)
    method = _load_plugin(Syn2Real("didmdn_rain800"), {"derain_best": path})
    _check_loaded_and_runs(method, state)
    wf = method.required_weights()[0]
    assert wf.folder == "syn2real/DIDMDN_Rain800_withGP" and wf.url.endswith("/DIDMDN_Rain800_withGP/derain_best")


def test_syn2real_official_sizes():
    assert official_size(321, 481) == (336, 496)
    assert official_size(2848, 4288) == (688, 1024)  # long side capped at 1024, then multiples of 16
    assert official_size(1500, 600) == (1024, 416)


def test_moss_plugin_loads_and_published_variant_is_precomputed(nets, tmp_path):
    state = formula_state(nets["moss"].state_dict(), 0.3)
    path = tmp_path / "ddn_ssir.pth"
    torch.save(state, path)
    _check_loaded_and_runs(_load_plugin(MOSS(), {"ddn_ssir.pth": path}), state)
    published = MOSS("published")
    assert isinstance(published, PrecomputedMethod) and published.spec == "moss:published"
    assert set(MOSS.info.variants) == {"default", "published"} and not published.required_weights()


def test_moss_runs_one_image_at_a_time(nets, tmp_path):
    """The memory read-out depends on the whole batch, so each image must be processed alone."""
    state = formula_state(nets["moss"].state_dict(), 0.3)
    torch.save(state, tmp_path / "m.pth")
    method = _load_plugin(MOSS(), {"ddn_ssir.pth": tmp_path / "m.pth"})
    x = torch.rand(2, 3, 16, 24, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(method.derain(x)[1:], method.derain(x[1:]), atol=1e-6)


# --- MSPFN: TensorFlow checkpoint format -------------------------------------------------------------
# A checkpoint written by TensorFlow 2.21 (tf.compat.v1.train.Saver) holding generator/rnn1/weight
# (3x3x2x3 float32 = arange(54) / 10), generator/rnn1/alpha ([0.25, -1.5]), global_step (int64
# 1234567890123) and scale (float64 2.5).
TINY_INDEX = (
    "AAAGCAEaAggBABQPZ2VuZXJhdG9yL3JubjEvYWxwaGEIARIEEgIIAigINcld5jUPBh53ZWlnaHQIARIQEgIIAxICCAMSAggCEgIIAyAIKNgB"
    "NZnMoC0BCg5sb2JhbF9zdGVwCAkSACDgASgINX81vNQABQ5zY2FsZQgCEgAg6AEoCDWL8ldAAAAAAAEAAAAAtC/gHAAAAAABAAAAAMDyobAA"
    "AQN0AI8BAAAAAAEAAAAAFm4Ro5QBCKEBDwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABX+4CLJHVH2w=="
)
TINY_DATA = (
    "AACAPgAAwL8AAAAAzczMPc3MTD6amZk+zczMPgAAAD+amRk/MzMzP83MTD9mZmY/AACAP83MjD+amZk/ZmamPzMzsz8AAMA/zczMP5qZ2T9m"
    "ZuY/MzPzPwAAAEBmZgZAzcwMQDMzE0CamRlAAAAgQGZmJkDNzCxAMzMzQJqZOUAAAEBAZmZGQM3MTEAzM1NAmplZQAAAYEBmZmZAzcxsQDMz"
    "c0CamXlAAACAQDMzg0BmZoZAmpmJQM3MjEAAAJBAMzOTQGZmlkCamZlAzcycQAAAoEAzM6NAZmamQJqZqUDLBPtxHwEAAAAAAAAAAARA"
)


def test_tf_checkpoint_reader_reads_a_real_tensorflow_checkpoint(tmp_path):
    (tmp_path / "tiny.index").write_bytes(base64.b64decode(TINY_INDEX))
    (tmp_path / "tiny.data-00000-of-00001").write_bytes(base64.b64decode(TINY_DATA))
    v = read_tf_checkpoint(tmp_path / "tiny")
    assert set(v) == {"generator/rnn1/weight", "generator/rnn1/alpha", "global_step", "scale"}
    np.testing.assert_allclose(v["generator/rnn1/weight"], np.arange(54, dtype=np.float32).reshape(3, 3, 2, 3) / 10)
    np.testing.assert_array_equal(v["generator/rnn1/alpha"], np.array([0.25, -1.5], np.float32))
    assert v["global_step"].dtype == np.int64 and int(v["global_step"]) == 1234567890123
    assert float(v["scale"]) == 2.5
    # mapping: TF (kh, kw, out, in) deconv filter -> torch (in, out, kh, kw)
    sd = state_dict_from_tf(v)
    assert set(sd) == {"rnn1.weight", "rnn1.alpha"} and sd["rnn1.weight"].shape == (3, 2, 3, 3)
    assert float(sd["rnn1.weight"][2, 1, 0, 1]) == pytest.approx(float(v["generator/rnn1/weight"][0, 1, 1, 2]))


def _write_tf_bundle(prefix: Path, variables: dict[str, np.ndarray]) -> None:
    """Minimal TF tensor-bundle writer (one uncompressed data block) for float32 variables."""
    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                return bytes(out)

    def field(num: int, payload: bytes | int) -> bytes:
        if isinstance(payload, int):
            return varint(num << 3) + varint(payload)
        return varint(num << 3 | 2) + varint(len(payload)) + payload

    data, entries, offset = bytearray(), [(b"", field(1, 1))], 0
    for name in sorted(variables):
        raw = np.ascontiguousarray(variables[name], dtype="<f4").tobytes()
        shape = b"".join(field(2, field(1, d)) for d in variables[name].shape)
        entries.append((name.encode(), field(1, 1) + field(2, shape) + field(4, offset) + field(5, len(raw))))
        data += raw
        offset += len(raw)

    def block(items) -> bytes:
        body = b"".join(varint(0) + varint(len(k)) + varint(len(v)) + k + v for k, v in items)
        return body + struct.pack("<II", 0, 1)

    data_block = block(entries)
    table = data_block + b"\0\0\0\0\0"
    index_block = block([(entries[-1][0] + b"\xff", varint(0) + varint(len(data_block)))])
    index_offset = len(table)
    table += index_block + b"\0\0\0\0\0"
    meta_offset = len(table)
    table += block([]) + b"\0\0\0\0\0"
    handles = varint(meta_offset) + varint(8) + varint(index_offset) + varint(len(index_block))
    table += handles + b"\0" * (40 - len(handles)) + struct.pack("<Q", 0xDB4775248B80FB57)
    Path(f"{prefix}.index").write_bytes(table)
    Path(f"{prefix}.data-00000-of-00001").write_bytes(bytes(data))


@pytest.fixture(scope="module")
def mspfn_net() -> MSPFNNet:
    return MSPFNNet()


def test_mspfn_parameter_count_and_tf_variable_names(mspfn_net):
    assert sum(p.numel() for p in mspfn_net.parameters()) == MSPFN_PARAMS
    table = tf_variable_table(mspfn_net)
    assert len(table) == 859
    assert fingerprint(table.items()) == MSPFN_TF_FINGERPRINT


def test_mspfn_matches_official_tensorflow_output(mspfn_net):
    """Formula weights assigned in sorted TF-name order; reference numbers from the official TF graph."""
    table = tf_variable_table(mspfn_net)
    tf_vars = {}
    for i, name in enumerate(sorted(f"{n}:0" for n in table)):
        shape = table[name[:-2]]
        base = np.sin(0.37 * np.arange(int(np.prod(shape))) + i)
        value = base / np.sqrt(np.prod(shape[:-1])) if len(shape) == 4 else 0.1 + 0.1 * base
        tf_vars[name[:-2]] = value.reshape(shape).astype(np.float32)
    mspfn_net.load_state_dict(state_dict_from_tf(tf_vars), strict=True)
    hh, ww, cc = np.meshgrid(np.arange(16), np.arange(20), np.arange(3), indexing="ij")
    x = torch.from_numpy(np.sin(0.05 * hh * ww + 0.3 * hh + cc).astype(np.float32)).permute(2, 0, 1)[None]
    with torch.no_grad():
        y = mspfn_net(x)[0].permute(1, 2, 0).numpy()  # HxWxC, BGR, as the TF graph
    assert float(y.mean()) == pytest.approx(0.04013460874557495, rel=1e-3)
    assert float(y.std()) == pytest.approx(0.7090103030204773, rel=1e-4)
    expected = {(0, 0, 0): 0.06051288917660713, (3, 7, 1): 0.28076714277267456, (8, 19, 2): -0.5217644572257996,
                (15, 0, 0): -0.9848652482032776, (15, 19, 1): 0.7864283919334412, (9, 11, 2): -0.24391880631446838}
    for point, value in expected.items():
        assert float(y[point]) == pytest.approx(value, abs=2e-5)


def test_mspfn_plugin_reads_tf_checkpoint(mspfn_net, tmp_path):
    state = formula_state(mspfn_net.state_dict(), 0.3)
    tf_vars = {}
    for key, tensor in state.items():
        arr = tensor.numpy()
        tf_vars["generator/" + key.replace(".", "/")] = arr.transpose(2, 3, 1, 0) if arr.ndim == 4 else arr
    tf_vars["generator/rnn1/weight/Adam"] = np.zeros((3, 3, 64, 3), np.float32)  # optimiser slots are ignored
    _write_tf_bundle(tmp_path / "epoch50", tf_vars)
    method = _load_plugin(MSPFN(), {INDEX: tmp_path / INDEX, DATA: tmp_path / DATA})
    _check_loaded_and_runs(method, state, size=(18, 23))
