"""Efficiency figures of a tiny convolutional method, computed by hand."""

from __future__ import annotations

import pytest
import torch

from bench.methods.api import DerainMethod, MethodInfo
from bench.metrics.efficiency import count_flops, count_parameters, measure_efficiency


class TinyNet(DerainMethod):
    """conv 3->4 (3x3, bias) -> ReLU -> conv 4->3 (1x1, bias), residual."""

    info = MethodInfo(name="tiny", paper="(test network)", year=None, kind="learned")

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 3, 1))

    def derain(self, batch: torch.Tensor) -> torch.Tensor:
        return (batch + self.net(batch)).clamp(0, 1)

    def network(self) -> torch.nn.Module:
        return self.net


def test_parameter_count_by_hand() -> None:
    # 3x3 conv: 4*3*3*3 weights + 4 biases; 1x1 conv: 3*4 weights + 3 biases.
    assert count_parameters(TinyNet().network()) == 4 * 3 * 9 + 4 + 3 * 4 + 3 == 127
    assert count_parameters(None) == 0


def test_flops_by_hand() -> None:
    h, w = 8, 10
    # Per output pixel: 4 channels x 27 multiply-adds, then 3 channels x 4; two FLOPs per multiply-add.
    expected = 2 * h * w * (4 * 27 + 3 * 4)
    assert count_flops(TinyNet().derain, torch.rand(1, 3, h, w)) == expected


def test_measure_efficiency_states_the_input_size() -> None:
    figures = measure_efficiency(TinyNet(), torch.device("cpu"), size=(16, 24), repeats=3)
    assert figures["params"] == 127
    assert figures["flops"] == pytest.approx(2 * 16 * 24 * 120 / 1e9)
    assert (figures["input_height"], figures["input_width"]) == (16, 24)
    assert 0 < figures["ms_per_image"] < 5000
    assert figures["peak_memory_mb"] > 0
    with pytest.raises(ValueError, match="repeats"):
        measure_efficiency(TinyNet(), torch.device("cpu"), size=(16, 24), repeats=0)
