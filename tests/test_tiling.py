"""Tiled inference: bounded tiles, seamless blending."""

import torch

from bench.runner.tiling import tiled_apply


def test_pointwise_function_is_unchanged_by_tiling_and_tiles_stay_bounded():
    image = torch.rand(1, 3, 130, 301, generator=torch.Generator().manual_seed(0))
    seen = []

    def fn(x):
        seen.append(tuple(x.shape[-2:]))
        return x.sqrt()

    out = tiled_apply(fn, image, tile=64, overlap=16)
    assert torch.allclose(out, image.sqrt(), atol=1e-6)
    assert max(max(s) for s in seen) <= 64 and len(seen) > 1


def test_small_receptive_field_network_matches_the_whole_image():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 3, 5, padding=2)
    image = torch.rand(1, 3, 100, 140)
    with torch.no_grad():
        whole = conv(image)
        tiled = tiled_apply(conv, image, tile=48, overlap=16)
    # a tile's outer margin (where its zero padding differs from the whole image) gets no weight
    assert (tiled - whole).abs().max() < 1e-5


def test_no_tiling_when_the_image_fits():
    image = torch.rand(1, 3, 20, 30)
    calls = []
    tiled_apply(lambda x: calls.append(x.shape) or x, image, tile=64)
    assert calls == [torch.Size([1, 3, 20, 30])]
