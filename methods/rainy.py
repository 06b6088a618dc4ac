"""The identity "Rainy" row: the rainy input scored as if it were an output."""

import torch

from bench.methods.api import DerainMethod, MethodInfo


class Rainy(DerainMethod):
    """Returns its input unchanged; every table's baseline row."""

    info = MethodInfo(name="rainy", display_name="Rainy", paper="(input image, no deraining)", year=None,
                      kind="identity", description="identity: the rainy input itself")
    max_tile = None

    def derain(self, batch: torch.Tensor) -> torch.Tensor:
        return batch
