"""MSPFN (Jiang et al., "Multi-Scale Progressive Fusion Network for Single Image Deraining", CVPR 2020),
the released model ``TEST_MSPFN_M17N1.py`` of kuijiang94/MSPFN (@ 26e6073): 17 BCM stages of one RCAB each.

PyTorch port of the official TensorFlow graph. Name mapping (TF checkpoint -> this module's state dict):
drop the leading ``generator/`` scope, replace ``/`` by ``.``; 4-D filters are permuted (3, 2, 0, 1):
``conv_layer`` / ``tf.layers.conv2d`` / slim filters (kh, kw, in, out) become (out, in, kh, kw) and
``deconv_layer`` filters (kh, kw, out, in) become ConvTranspose2d's (in, out, kh, kw). For example
``generator/BCM4_0/group_1_RCAB1/conv2d_2/kernel`` (1, 1, 64, 16) -> ``BCM4_0.group_1_RCAB1.conv2d_2.kernel``
(16, 64, 1, 1). See :func:`state_dict_from_tf` / :func:`tf_variable_table`.

Parameter count: 15,823,424, the number the official test script prints
(``np.sum([np.prod(v.get_shape()) for v in tf.trainable_variables()])``) for its graph of 859 variables;
the ConvLSTM filters count their hidden-state input channels, which the zero-state step multiplies by zero.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from methods.mspfn.layers import RCAB, ConvPrelu, DeconvPrelu, Scope, ZeroStateConvLSTM

NUM_BCM = 17
TF_SCOPE = "generator/"


def _bcm(prefix: str, n: int, with_up: tuple[str, ...]) -> Scope:
    """One BCM scope: optional up-sampling deconvs, a strided conv, one RCAB and the up-sampling deconv."""
    scope = Scope()
    for name in with_up:
        setattr(scope, name, DeconvPrelu(64, 64, 2))
    setattr(scope, f"{prefix}{n + 1}", ConvPrelu(64, 64, 2))
    setattr(scope, f"group_{n + 1}_RCAB1", RCAB(64, 4))
    setattr(scope, f"up_{n + 1}", DeconvPrelu(128, 64, 2))
    return scope


class MSPFNNet(nn.Module):
    """forward: Bx3xHxW, BGR in [-1, 1] (H, W multiples of 4) -> derained BGR in about [-1, 1] (not clamped)."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn1 = DeconvPrelu(3, 64, 1)
        self.rnn2 = DeconvPrelu(3, 64, 1)
        self.rnn4 = DeconvPrelu(3, 64, 1)
        rm = self.residual_memory = Scope()
        rm.rain4_res1, rm.lstm_group4, rm.rain4_res2 = DeconvPrelu(64, 32, 1), ZeroStateConvLSTM(32, 64), DeconvPrelu(64, 64, 1)
        rm.upRMM4_2 = DeconvPrelu(64, 64, 2)
        rm.rain2_res1, rm.lstm_group2, rm.rain2_res2 = DeconvPrelu(64, 32, 1), ZeroStateConvLSTM(32, 128), DeconvPrelu(128, 64, 1)
        rm.upRMM4_1, rm.upRMM2_1 = DeconvPrelu(64, 64, 2), DeconvPrelu(64, 64, 2)
        rm.rain_res1, rm.lstm_group, rm.rain_res2 = DeconvPrelu(64, 32, 1), ZeroStateConvLSTM(32, 256), DeconvPrelu(256, 64, 1)
        for n in range(NUM_BCM):
            setattr(self, f"BCM4_{n}", _bcm("down4_", n, ()))
            setattr(self, f"BCM2_{n}", _bcm("down2_", n, (f"upBCM4_2_{n}",)))
            setattr(self, f"BCM_{n}", _bcm("down_", n, (f"upBCM4to1_{n}", f"upBCM2to1_{n}")))
        self.rnn_recon4 = DeconvPrelu(128, 64, 1)
        self.rnn_recon2 = DeconvPrelu(128, 64, 1)
        self.rnn_recon = DeconvPrelu(128, 64, 1)
        self.up4_2 = DeconvPrelu(64, 64, 2)
        self.up2_1 = DeconvPrelu(128, 64, 2)
        self.rnn5 = DeconvPrelu(128, 32, 1)
        self.rnn7 = DeconvPrelu(32, 3, 1, activation=False)

    @staticmethod
    def _fuse(scope: Scope, n: int, prefix: str, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        down = getattr(scope, f"{prefix}{n + 1}")(x)
        refined = getattr(scope, f"group_{n + 1}_RCAB1")(down)
        return getattr(scope, f"up_{n + 1}")(torch.cat([down, refined], 1), size)

    def forward(self, rain: torch.Tensor) -> torch.Tensor:
        h, w = rain.shape[-2:]
        s1, s2, s4 = (h, w), (h // 2, w // 2), (h // 4, w // 4)
        rain1 = self.rnn1(rain, s1)
        rain2 = self.rnn2(F.avg_pool2d(rain, 2), s2)
        rain4 = self.rnn4(F.avg_pool2d(rain, 4), s4)

        rm = self.residual_memory  # residual memory module (RMM)
        res4 = rm.rain4_res2(rm.lstm_group4(rm.rain4_res1(rain4, s4)), s4) + rain4
        rain4to2 = rm.upRMM4_2(res4, s2)
        res2 = rm.rain2_res2(rm.lstm_group2(rm.rain2_res1(rain2 + rain4to2, s2)), s2) + rain2
        rain1_e = rain1 + rm.upRMM2_1(res2, s1) + rm.upRMM4_1(rain4to2, s1)
        res1 = rm.rain_res2(rm.lstm_group(rm.rain_res1(rain1_e, s1)), s1) + rain1

        x4, x2, x1 = res4, res2, res1
        for n in range(NUM_BCM):  # BCM stages, coarse to fine
            b4, b2, b1 = getattr(self, f"BCM4_{n}"), getattr(self, f"BCM2_{n}"), getattr(self, f"BCM_{n}")
            x4 = x4 + self._fuse(b4, n, "down4_", x4, s4)
            up4to2 = getattr(b2, f"upBCM4_2_{n}")(x4, s2)
            x2 = x2 + self._fuse(b2, n, "down2_", x2 + up4to2, s2)
            up4to1 = getattr(b1, f"upBCM4to1_{n}")(up4to2, s1)
            up2to1 = getattr(b1, f"upBCM2to1_{n}")(x2, s1)
            x1 = x1 + self._fuse(b1, n, "down_", x1 + up4to1 + up2to1, s1)

        x4 = self.rnn_recon4(torch.cat([x4, res4], 1), s4)
        x2 = self.rnn_recon2(torch.cat([x2, res2], 1), s2)
        x1 = self.rnn_recon(torch.cat([x1, res1], 1), s1)
        up42 = self.up2_1(torch.cat([self.up4_2(x4, s2), x2], 1), s1)
        rain_layer = self.rnn7(self.rnn5(torch.cat([x1, up42], 1), s1), s1)
        return rain - rain_layer


def tf_to_torch_key(tf_name: str) -> str:
    """``generator/BCM4_0/down4_1/weight:0`` -> ``BCM4_0.down4_1.weight``."""
    name = tf_name.split(":")[0]
    return name.removeprefix(TF_SCOPE).replace("/", ".")


def state_dict_from_tf(variables: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Convert the ``generator/`` variables of an official checkpoint into this module's state dict
    (other variables, e.g. optimiser slots or ``global_step``, are ignored)."""
    out = {}
    for name, value in variables.items():
        if not name.startswith(TF_SCOPE) or "/Adam" in name or name.endswith("/Momentum"):
            continue
        tensor = torch.from_numpy(np.ascontiguousarray(value)).float()
        out[tf_to_torch_key(name)] = tensor.permute(3, 2, 0, 1).contiguous() if tensor.ndim == 4 else tensor
    return out


def tf_variable_table(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """The official TF variable names and TF shapes this module corresponds to (inverse of the mapping)."""
    table = {}
    for key, tensor in model.state_dict().items():
        shape = tuple(tensor.shape)
        if len(shape) == 4:
            shape = (shape[2], shape[3], shape[1], shape[0])
        table[TF_SCOPE + key.replace(".", "/")] = shape
    return table
