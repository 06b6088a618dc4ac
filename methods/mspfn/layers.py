"""TensorFlow-semantics building blocks for the MSPFN port: 'SAME' padding, conv2d_transpose with an
explicit output size, PReLU as ``max(0, x) + alpha * min(0, x)``, a zero-state ConvLSTM step.

Parameters are stored in PyTorch layout under the TF variable's last name (``weight``, ``alpha``,
``kernel``, ``bias``, ``weights``, ``biases``), so a module path mirrors the TF scope path.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF 'SAME' padding (before, after) of one axis: output ceil(size / stride), extra pixel after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def prelu(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """MSPFN's PReLU: per-channel alpha (NCHW)."""
    return x.clamp(min=0) + alpha.view(1, -1, 1, 1) * x.clamp(max=0)


class Scope(nn.Module):
    """An empty module standing for a TF variable scope (keeps state-dict keys equal to TF names)."""


class ConvPrelu(nn.Module):
    """``conv_layer`` + ``prelu``: 3x3 convolution (no bias), TF 'SAME' padding, stride 1 or 2."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.weight = nn.Parameter(torch.zeros(out_ch, in_ch, 3, 3))
        self.alpha = nn.Parameter(torch.zeros(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = same_pad(x.shape[2], 3, self.stride)
        left, right = same_pad(x.shape[3], 3, self.stride)
        y = F.conv2d(F.pad(x, (left, right, top, bottom)), self.weight, stride=self.stride)
        return prelu(y, self.alpha)


class DeconvPrelu(nn.Module):
    """``deconv_layer`` (+ ``prelu`` unless ``activation=False``): tf.nn.conv2d_transpose with a 3x3 filter,
    'SAME' padding and an explicit output size. ``weight`` is stored as PyTorch's ConvTranspose2d layout
    (in, out, 3, 3), i.e. the TF filter (3, 3, out, in) permuted (3, 2, 0, 1)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, activation: bool = True) -> None:
        super().__init__()
        self.stride = stride
        self.weight = nn.Parameter(torch.zeros(in_ch, out_ch, 3, 3))
        if activation:
            self.alpha = nn.Parameter(torch.zeros(out_ch))
        else:
            self.alpha = None

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        y = F.conv_transpose2d(x, self.weight, stride=self.stride)
        top, _ = same_pad(size[0], 3, self.stride)
        left, _ = same_pad(size[1], 3, self.stride)
        y = y[:, :, top : top + size[0], left : left + size[1]]
        return prelu(y, self.alpha) if self.alpha is not None else y


class TFLayerConv(nn.Module):
    """A ``tf.layers.conv2d`` (kernel + bias, 'same' padding, stride 1), optionally with MSPFN's prelu."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, activation: bool) -> None:
        super().__init__()
        self.kernel = nn.Parameter(torch.zeros(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.alpha = nn.Parameter(torch.zeros(out_ch)) if activation else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(x, self.kernel, self.bias, padding=self.kernel.shape[-1] // 2)
        return prelu(y, self.alpha) if self.alpha is not None else y


class RCAB(nn.Module):
    """Residual channel-attention block of MSPFN (tf.layers names conv2d, conv2d_1, conv2d_2, conv2d_3)."""

    def __init__(self, channels: int = 64, reduction: int = 4) -> None:
        super().__init__()
        self.conv2d = TFLayerConv(channels, channels, 3, activation=True)
        self.conv2d_1 = TFLayerConv(channels, channels, 3, activation=False)
        self.conv2d_2 = TFLayerConv(channels, channels // reduction, 1, activation=True)
        self.conv2d_3 = TFLayerConv(channels // reduction, channels, 1, activation=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.conv2d_1(self.conv2d(x))
        attention = torch.sigmoid(self.conv2d_3(self.conv2d_2(f.mean(dim=(2, 3), keepdim=True))))
        return x + f * attention


class LSTMConv(nn.Module):
    """slim.conv2d ``LSTM_conv``: 3x3, bias, over [input, hidden] channels -> 4 * features (i, j, f, o)."""

    def __init__(self, in_ch: int, features: int) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(4 * features, in_ch + features, 3, 3))
        self.biases = nn.Parameter(torch.zeros(4 * features))


class ZeroStateConvLSTM(nn.Module):
    """One step of MSPFN's BasicConvLSTMCell from the zero state (the only way the test graph uses it).

    With c = h = 0 the hidden half of the input contributes nothing, so only the input channels' weights
    are applied: c' = sigmoid(i) * tanh(j); h' = tanh(c') * sigmoid(o). Returns h'.
    """

    def __init__(self, in_ch: int, features: int) -> None:
        super().__init__()
        self.in_ch = in_ch
        self.convLSTM = Scope()
        self.convLSTM.LSTM_conv = LSTMConv(in_ch, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.convLSTM.LSTM_conv
        gates = F.conv2d(x, conv.weights[:, : self.in_ch], conv.biases, padding=1)
        i, j, _f, o = torch.chunk(gates, 4, dim=1)
        return torch.tanh(torch.sigmoid(i) * torch.tanh(j)) * torch.sigmoid(o)
