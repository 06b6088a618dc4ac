"""Step learning-rate schedule driven by the fraction of training done (0..1)."""

from __future__ import annotations

from typing import Any

import torch


class StepSchedule:
    """lr = base_lr * gamma ** (number of milestones <= progress); progress is a fraction of training in [0, 1].

    The paper's schedule is milestones (0.3, 0.5, 0.8), gamma 0.2 (epochs 30/50/80 of 100).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, base_lr: float,
                 milestones: tuple[float, ...] = (0.3, 0.5, 0.8), gamma: float = 0.2) -> None:
        self.optimizer = optimizer
        self.base_lr = base_lr
        self.milestones = tuple(sorted(milestones))
        self.gamma = gamma
        self.passed = 0

    @property
    def lr(self) -> float:
        return self.base_lr * self.gamma**self.passed

    def update(self, progress: float) -> float:
        """Set the optimizer's lr for ``progress`` (never moves back) and return it."""
        self.passed = max(self.passed, sum(progress >= m for m in self.milestones))
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        return self.lr

    def state_dict(self) -> dict[str, Any]:
        return {"base_lr": self.base_lr, "milestones": list(self.milestones), "gamma": self.gamma, "passed": self.passed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base_lr = float(state["base_lr"])
        self.milestones = tuple(state["milestones"])
        self.gamma = float(state["gamma"])
        self.passed = int(state["passed"])
        self.update(0.0)
