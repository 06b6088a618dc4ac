"""Tiled inference with overlap, so memory stays bounded on large images."""

from __future__ import annotations

from collections.abc import Callable

import torch


def _starts(length: int, tile: int, step: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def _ramp(length: int, overlap: int, at_start: bool, at_end: bool) -> torch.Tensor:
    """1-D blending weights on the sides that touch another tile: the outer quarter of the overlap gets
    weight 0 (where a network's padding spoils its output), then a linear ramp up to 1."""
    weight = torch.ones(length)
    if overlap > 0:
        margin = overlap // 4
        ramp = torch.cat([torch.zeros(margin), torch.linspace(0.0, 1.0, overlap - 2 * margin + 2)[1:-1],
                          torch.ones(margin)])
        if not at_start:
            weight[:overlap] = ramp
        if not at_end:
            weight[-overlap:] = ramp.flip(0)
    return weight


def tiled_apply(fn: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, tile: int | None,
                overlap: int = 32) -> torch.Tensor:
    """Apply ``fn`` (Bx3xHxW -> Bx3xHxW) on overlapping tiles of at most ``tile`` px and blend linearly.

    image: float32 1x3xHxW. With ``tile`` None or an image that fits, ``fn`` sees the whole image.
    """
    _, _, height, width = image.shape
    if tile is None or (height <= tile and width <= tile):
        return fn(image)
    overlap = min(overlap, tile // 4)
    step = tile - overlap
    out = torch.zeros_like(image)
    norm = torch.zeros((1, 1, height, width), dtype=image.dtype, device=image.device)
    ys, xs = _starts(height, tile, step), _starts(width, tile, step)
    for y in ys:
        for x in xs:
            h, w = min(tile, height - y), min(tile, width - x)
            piece = fn(image[:, :, y:y + h, x:x + w])
            wy = _ramp(h, overlap, y == 0, y + h >= height).to(image)
            wx = _ramp(w, overlap, x == 0, x + w >= width).to(image)
            weight = (wy[:, None] * wx[None, :])[None, None]
            out[:, :, y:y + h, x:x + w] += piece * weight
            norm[:, :, y:y + h, x:x + w] += weight
    return out / norm
