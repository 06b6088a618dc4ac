"""PReNet-family progressive recurrent deraining networks (Ren et al., CVPR 2019).

Every network runs ``stages`` stages that share all their weights. A stage takes the rainy image and the
current estimate (6 channels), maps them to 32 feature channels, optionally passes them through a
convolutional LSTM, then through 5 residual units, and predicts a residual that is added to the rainy image.

Module and parameter names follow the official checkpoints exactly (``conv0``, ``res_conv1`` ... ``res_conv5``,
``conv_i/f/g/o``, ``conv``), so the official files load with ``strict=True``. The building blocks here
(:class:`ConvLSTMCell`, :class:`ResidualUnit`, :class:`ProgressiveRecurrentNet`) are shared with SAPNet.

| class | LSTM | residual units | parameters |
|---|---|---|---|
| :class:`PReNet` | yes | 5 distinct | 168,963 |
| :class:`PReNetR` (official ``PReNet_r``) | yes | 1 unit applied 5 times | 94,979 |
| :class:`PRN` | no | 5 distinct | 95,107 |
| :class:`PRNR` (official ``PRN_r``) | no | 1 unit applied 5 times | 21,123 |
| :class:`PReNetReal` (official ``Generator_lstm``) | after the units | 5 distinct | 168,963 |
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, overload

import torch
import torch.nn.functional as F
from torch import nn

FEATURES = 32  # feature channels of every PReNet-family network


def _gate(channels: int, activation: nn.Module) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(2 * channels, channels, 3, 1, 1), activation)


class ConvLSTMCell(nn.Module):
    """Convolutional LSTM cell: four 3x3 gate convs over ``cat(x, h)`` (2C -> C channels).

    Input, forget and output gates use a sigmoid, the cell candidate a tanh:
    ``c' = f * c + i * g``, ``h' = o * tanh(c')``. A missing state starts at zero.
    """

    def __init__(self, channels: int = FEATURES) -> None:
        super().__init__()
        self.channels = channels
        self.conv_i = _gate(channels, nn.Sigmoid())
        self.conv_f = _gate(channels, nn.Sigmoid())
        self.conv_g = _gate(channels, nn.Tanh())
        self.conv_o = _gate(channels, nn.Sigmoid())

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x: BxCxHxW features; state: (h, c) or None. Returns the new (h, c)."""
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.channels, x.shape[2], x.shape[3])
            state = (zeros, zeros)
        h, c = state
        xh = torch.cat((x, h), 1)
        c = self.conv_f(xh) * c + self.conv_i(xh) * self.conv_g(xh)
        h = self.conv_o(xh) * torch.tanh(c)
        return h, c


class ResidualUnit(nn.Sequential):
    """Residual unit ``relu(body(x) + x)``; PReNet's body is 3x3 conv-ReLU-conv-ReLU at 32 channels.

    Subclasses (SAPNet's progressive dilated unit) pass their own layer list; the layer order sets
    the parameter names (``res_convK.<index>``) that the official checkpoints use.
    """

    def __init__(self, *layers: nn.Module, channels: int = FEATURES) -> None:
        if not layers:
            layers = (
                nn.Conv2d(channels, channels, 3, 1, 1),
                nn.ReLU(),
                nn.Conv2d(channels, channels, 3, 1, 1),
                nn.ReLU(),
            )
        super().__init__(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(super().forward(x) + x)


_LSTM_PREFIX = "lstm."


def _flat_lstm_state_dict_hook(module: nn.Module, state_dict: dict, prefix: str, local_metadata: Any) -> None:
    # state_dict() writes the LSTM gates as "conv_i..." (the official layout), not "lstm.conv_i..."
    nested = prefix + _LSTM_PREFIX
    items = list(state_dict.items())
    state_dict.clear()  # rebuilt in place to keep the official key order
    for key, value in items:
        state_dict[prefix + key[len(nested):] if key.startswith(nested) else key] = value


def _flat_lstm_load_pre_hook(state_dict: dict, prefix: str, *args: Any) -> None:
    # load_state_dict() accepts the official flat names (and our own nested ones)
    for gate in ("conv_i.", "conv_f.", "conv_g.", "conv_o."):
        for key in [k for k in state_dict if k.startswith(prefix + gate)]:
            state_dict[prefix + _LSTM_PREFIX + key[len(prefix):]] = state_dict.pop(key)


class ProgressiveRecurrentNet(nn.Module):
    """Shared skeleton of the PReNet family and SAPNet: ``stages`` weight-shared stages.

    units: the residual units, registered as ``res_conv1``, ``res_conv2``, ...
    unit_repeats: how many times the unit list is applied per stage (5 for the ``_r`` variants with one unit).
    lstm: "before" the units (PReNet, SAPNet), "after" them (official real-rain ``Generator_lstm``) or None.
    residual_output: add the rainy input to the predicted map (all but ``Generator_lstm``).

    The LSTM gates appear in ``state_dict()`` under the official flat names ``conv_i`` ... ``conv_o``.
    """

    def __init__(
        self,
        units: Sequence[nn.Module],
        *,
        stages: int = 6,
        unit_repeats: int = 1,
        lstm: Literal["before", "after"] | None = "before",
        residual_output: bool = True,
        channels: int = FEATURES,
    ) -> None:
        super().__init__()
        if stages < 1:
            raise ValueError(f"{type(self).__name__}: stages must be >= 1, got {stages}")
        self.stages = stages
        self.unit_repeats = unit_repeats
        self.lstm_position = lstm
        self.residual_output = residual_output
        self.conv0 = nn.Sequential(nn.Conv2d(6, channels, 3, 1, 1), nn.ReLU())
        for k, unit in enumerate(units, start=1):
            self.add_module(f"res_conv{k}", unit)
        self.unit_names = [f"res_conv{k}" for k in range(1, len(units) + 1)]
        if lstm is not None:
            self.lstm = ConvLSTMCell(channels)
            self._register_state_dict_hook(_flat_lstm_state_dict_hook)
            self._register_load_state_dict_pre_hook(_flat_lstm_load_pre_hook)
        self.conv = nn.Sequential(nn.Conv2d(channels, 3, 3, 1, 1))

    def _units(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.unit_repeats):
            for name in self.unit_names:
                x = getattr(self, name)(x)
        return x

    @overload
    def forward(self, rainy: torch.Tensor, return_all: Literal[False] = ...) -> torch.Tensor: ...
    @overload
    def forward(self, rainy: torch.Tensor, return_all: Literal[True]) -> list[torch.Tensor]: ...

    def forward(self, rainy: torch.Tensor, return_all: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """rainy: float32 Bx3xHxW RGB in [0,1].

        Returns the last stage's estimate (Bx3xHxW, not clamped), or with ``return_all=True`` the list of
        every stage's estimate (first stage first; the last element is the final estimate).
        """
        x = rainy
        state: tuple[torch.Tensor, torch.Tensor] | None = None
        estimates: list[torch.Tensor] = []
        for _ in range(self.stages):
            x = self.conv0(torch.cat((rainy, x), 1))
            if self.lstm_position == "before":
                state = self.lstm(x, state)
                x = state[0]
            x = self._units(x)
            if self.lstm_position == "after":
                state = self.lstm(x, state)
                x = state[0]
            x = self.conv(x)
            if self.residual_output:
                x = x + rainy
            estimates.append(x)
        return estimates if return_all else estimates[-1]


class PReNet(ProgressiveRecurrentNet):
    """PReNet: ConvLSTM then 5 residual units, 6 stages; 168,963 parameters."""

    def __init__(self, stages: int = 6) -> None:
        super().__init__([ResidualUnit() for _ in range(5)], stages=stages, lstm="before")


class PReNetR(ProgressiveRecurrentNet):
    """PReNet_r: like PReNet with one residual unit applied 5 times; 94,979 parameters."""

    def __init__(self, stages: int = 6) -> None:
        super().__init__([ResidualUnit()], stages=stages, unit_repeats=5, lstm="before")


class PRN(ProgressiveRecurrentNet):
    """PRN: PReNet without the LSTM (progressive, not recurrent); 95,107 parameters."""

    def __init__(self, stages: int = 6) -> None:
        super().__init__([ResidualUnit() for _ in range(5)], stages=stages, lstm=None)


class PRNR(ProgressiveRecurrentNet):
    """PRN_r: PRN with one residual unit applied 5 times; 21,123 parameters."""

    def __init__(self, stages: int = 6) -> None:
        super().__init__([ResidualUnit()], stages=stages, unit_repeats=5, lstm=None)


class PReNetReal(ProgressiveRecurrentNet):
    """Architecture of the official real-rain checkpoint ``logs/real/PReNet1.pth`` (official ``Generator_lstm``).

    Same parameters as :class:`PReNet` (168,963, identical names and shapes) but a different computation:
    the ConvLSTM comes after the 5 residual units, the output conv reads the LSTM's hidden state and
    predicts the derained image directly (no residual to the input), and the official test script runs
    4 stages.
    """

    def __init__(self, stages: int = 4) -> None:
        super().__init__(
            [ResidualUnit() for _ in range(5)], stages=stages, lstm="after", residual_output=False
        )


def count_parameters(net: nn.Module) -> int:
    """Number of parameters of ``net`` (trainable or not)."""
    return sum(p.numel() for p in net.parameters())
