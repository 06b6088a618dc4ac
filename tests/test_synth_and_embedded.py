"""Rain synthesizer and the embedded default suite (deterministic, bit-identical)."""

import hashlib
import tomllib

import numpy as np

from bench.config import PROJECT_ROOT
from bench.data.embedded import backgrounds, generate
from bench.data.synth import motion_blur_kernel, synthesize_rain


def test_same_seed_same_rain_and_heavy_is_hazier_than_light():
    clean = np.full((64, 80, 3), 0.2)
    a = synthesize_rain(clean, "light", np.random.default_rng(5))
    b = synthesize_rain(clean, "light", np.random.default_rng(5))
    heavy = synthesize_rain(clean, "heavy", np.random.default_rng(5))
    assert np.array_equal(a, b)
    assert a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1
    assert (a >= clean - 1e-6).all()  # light rain only adds streaks
    # the veiling term lifts even streak-free pixels towards the airlight
    assert np.median(heavy) > np.median(a) + 0.03


def test_motion_blur_kernel_follows_its_angle():
    vertical = motion_blur_kernel(15, 0.0, 0.0)
    assert vertical.max() == 1.0 and np.count_nonzero(vertical[:, 7]) == 15
    slanted = motion_blur_kernel(15, 45.0, 0.0)
    assert slanted[0, 0] == 0 or slanted[0, -1] == 0  # the diagonal, not the column
    assert np.count_nonzero(slanted[:, 7]) < 15


def test_embedded_suite_matches_the_digest_recorded_in_its_cards(tmp_path):
    for name in ("embedded-light", "embedded-heavy"):
        card = tomllib.loads((PROJECT_ROOT / "datasets" / f"{name}.toml").read_text())
        gen = card["generator"]
        digest = generate(gen["preset"], gen["seed"], gen["count"], tmp_path / name)
        assert digest == gen["digest"], f"{name}: generation is not bit-identical to the recorded digest"
        assert len(list((tmp_path / name / "input").glob("*.png"))) == gen["count"] >= 16


def test_backgrounds_are_distinct_crops():
    crops = backgrounds(16)
    digests = {hashlib.sha256(c.tobytes()).hexdigest() for _, c in crops}
    assert len(digests) == 16 and all(c.shape == (192, 256, 3) for _, c in crops)
