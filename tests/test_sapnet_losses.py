"""SAPNet's losses: known values on constructed inputs, gradient flow, backbone reporting."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from methods.sapnet.losses import LossWeights, SAPNetLoss, focal_loss
from methods.sapnet.losses.contrastive_loss import (
    LAYER_WEIGHTS,
    PerceptualContrastiveLoss,
    contrastive_from_features,
)
from methods.sapnet.losses.efficientnet_lite import load_lite0
from methods.sapnet.losses.feature_backbones import (
    perceptual_extractor,
    segmentation_extractor,
)
from methods.sapnet.losses.lpisl import LPISLoss, lpisl_from_features
from methods.sapnet.losses.segmentation_loss import FPNHead, SegmentationLoss
from methods.sapnet.losses.ssim_loss import C1, NegativeSSIMLoss, ssim_map
from methods.sapnet.network import SAPNetwork

torch.set_num_threads(1)  # the machine is shared: one thread is faster than two under load


@pytest.fixture(autouse=True)
def _empty_torch_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # no VGG / ResNet in torchvision's cache: the offline fallback is what these tests exercise
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def test_negative_ssim_of_identical_images_is_minus_one() -> None:
    x = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    assert NegativeSSIMLoss()(x, x).item() == pytest.approx(-1.0, abs=1e-5)
    assert NegativeSSIMLoss()(x, 1 - x).item() > -0.5


def test_ssim_interior_matches_closed_form_and_scikit_image() -> None:
    from skimage.metrics import structural_similarity

    # constant images: no variance, so SSIM = (2ab + C1) / (a^2 + b^2 + C1) away from the zero-padded border
    a, b = 0.6, 0.3
    m = ssim_map(torch.full((1, 3, 32, 32), a), torch.full((1, 3, 32, 32), b))
    assert m[..., 5:-5, 5:-5].mean().item() == pytest.approx((2 * a * b + C1) / (a * a + b * b + C1), rel=2e-4)
    # textured images: the interior agrees with scikit-image's Gaussian SSIM (sigma 1.5, 11x11, population stats)
    rng = np.random.default_rng(1)
    x = rng.random((40, 40)).astype(np.float32)
    y = np.clip(x + 0.1 * rng.standard_normal((40, 40)), 0, 1).astype(np.float32)
    _, ref = structural_similarity(x, y, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                   use_sample_covariance=False, full=True)
    ours = ssim_map(torch.from_numpy(x)[None, None], torch.from_numpy(y)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(ours[5:-5, 5:-5], ref[5:-5, 5:-5], atol=2e-4)


def test_focal_loss_matches_hand_computation() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]]).T.reshape(1, 3, 1, 2)  # two pixels, 3 classes
    target = torch.tensor([[[0, 1]]])
    expected = 0.0
    for scores, t in (([2.0, 0.0, -1.0], 0), ([0.5, 1.5, 0.0], 1)):
        p = math.exp(scores[t]) / sum(math.exp(s) for s in scores)
        expected += -((1 - p) ** 2) * math.log(p)
    assert focal_loss(logits, target).item() == pytest.approx(expected / 2, rel=1e-6)
    # gamma 0 is plain cross-entropy
    ce = torch.nn.functional.cross_entropy(logits, target)
    assert focal_loss(logits, target, gamma=0.0).item() == pytest.approx(ce.item(), rel=1e-6)


def test_contrastive_known_values() -> None:
    shapes = [(1, 4, 8, 8)] * 4
    anchor = [torch.ones(s) for s in shapes]
    positive = [torch.zeros(s) for s in shapes]
    negative = [torch.full(s, 4.0) for s in shapes]  # L1 to anchor 1 and 3 -> ratio 1/3 per layer
    value = contrastive_from_features(anchor, positive, negative).item()
    assert value == pytest.approx(sum(LAYER_WEIGHTS) / 3, rel=1e-6)
    assert sum(LAYER_WEIGHTS) == pytest.approx(15 / 32)


def test_contrastive_is_zero_when_derained_equals_clean() -> None:
    loss = PerceptualContrastiveLoss()
    g = torch.Generator().manual_seed(2)
    clean, rainy = torch.rand(1, 3, 32, 32, generator=g), torch.rand(1, 3, 32, 32, generator=g)
    assert loss(clean, clean, rainy).item() == pytest.approx(0.0, abs=1e-7)
    assert loss(rainy, clean, rainy).item() > 1e3  # derained == rainy: the denominator vanishes


def test_lpisl_known_values_and_scale_invariance() -> None:
    a = [torch.tensor([1.0, 0.0]).view(1, 2, 1, 1).expand(1, 2, 3, 3)]
    b = [torch.tensor([0.0, 1.0]).view(1, 2, 1, 1).expand(1, 2, 3, 3)]
    theta = [torch.tensor([2.0, 3.0])]
    assert lpisl_from_features(a, b, theta).item() == pytest.approx(5.0, rel=1e-6)
    assert lpisl_from_features([7 * a[0]], b, theta).item() == pytest.approx(5.0, rel=1e-6)
    assert lpisl_from_features(a, a, theta).item() == 0.0
    loss = LPISLoss()
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    assert loss(x, x).item() == pytest.approx(0.0, abs=1e-7)
    assert loss(x, x.flip(-1)).item() > 0.01


def test_fallback_backbone_is_a_working_imagenet_classifier() -> None:
    import skimage.data

    image = torch.from_numpy(skimage.data.chelsea()).permute(2, 0, 1)[None].float() / 255
    image = torch.nn.functional.interpolate(image, size=(224, 224), mode="bilinear", antialias=True)
    with torch.no_grad():
        top = load_lite0()(image).argmax(1).item()
    assert 281 <= top <= 285  # ImageNet's domestic cat classes (tabby ... Egyptian cat)


def test_backbone_names_are_reported() -> None:
    loss = SAPNetLoss()
    assert set(loss.backbones) == {"seg", "pcl", "lpisl"}
    assert all("efficientnet-lite0" in name for name in loss.backbones.values())
    assert "uniform" in loss.backbones["lpisl"]
    assert "seg" not in SAPNetLoss(LossWeights(seg=0.0)).backbones
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        perceptual_extractor("/nowhere.pth")


def test_segmenter_head_init_and_output_resolution() -> None:
    head = FPNHead((24, 40, 112, 320))
    weights = torch.cat([m.weight.flatten() for m in head.modules() if isinstance(m, torch.nn.Conv2d)])
    assert weights.std().item() == pytest.approx(0.01, rel=0.02)
    assert all(float(m.bias.detach().abs().max()) == 0 for m in head.modules() if isinstance(m, torch.nn.Conv2d))
    seg = SegmentationLoss()
    logits = seg.segmenter(torch.rand(2, 3, 64, 96))
    assert logits.shape == (2, 21, 16, 24)
    assert "efficientnet-lite0" in segmentation_extractor().name


@pytest.mark.parametrize("term", ["ssim", "seg", "pcl", "lpisl"])
def test_each_term_trains_the_deraining_network_only(term: str) -> None:
    torch.manual_seed(0)
    net = SAPNetwork(stages=2)
    weights = LossWeights(**{k: (1.0 if k == term else 0.0) for k in ("ssim", "seg", "pcl", "lpisl")})
    loss_fn = SAPNetLoss(weights)
    g = torch.Generator().manual_seed(4)
    rainy, clean = torch.rand(2, 3, 32, 32, generator=g), torch.rand(2, 3, 32, 32, generator=g)
    total, terms = loss_fn(net(rainy), clean, rainy)
    total.backward()
    assert set(terms) == {"ssim", term}
    grads = [p.grad for p in net.parameters()]
    assert all(gr is not None for gr in grads)
    assert sum(float(gr.abs().sum()) for gr in grads) > 0
    frozen = list(loss_fn.parameters())
    assert all(not p.requires_grad and p.grad is None for p in frozen)
    loss_fn.train()
    assert not any(m.training for m in loss_fn.modules() if isinstance(m, torch.nn.BatchNorm2d))
