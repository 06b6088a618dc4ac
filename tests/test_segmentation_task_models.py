"""Segmentation task models: ESPNet on a real Cityscapes image, SegFormer and mmseg adapters on models made here."""

from __future__ import annotations

import builtins
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.errors import BadInputError, UnavailableError
from bench.images import read_image
from bench.tasks.models.espnet.network import ESPNet
from bench.tasks.models.espnet.plugin import ESPNetCityscapes, labels_from_logits
from bench.tasks.models.mmseg import MMSeg, split_spec
from bench.tasks.models.segformer import CITYSCAPES_19, SegFormer, cityscapes_lookup
from bench.tasks.registry import create_task_model

torch.set_num_threads(1)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ESPNET_FILE = "espnet_p_2_q_8.pth"
FRANKFURT = "frankfurt_000000_000294"


def _shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found: the real test data lives in ../shared/data beside the project (development machines only)")
    return path


# ESPNet ------------------------------------------------------------------------------------------------
def test_espnet_spec_and_weights_declaration():
    model = create_task_model("espnet:cityscapes")
    assert isinstance(model, ESPNetCityscapes) and model.spec == "espnet:cityscapes"
    (wf,) = model.required_weights()
    assert wf.filename == ESPNET_FILE and wf.folder == "espnet"
    assert wf.url == "https://raw.githubusercontent.com/sacmehta/ESPNet/master/pretrained/decoder/espnet_p_2_q_8.pth"
    assert model.info.task == "segmentation" and model.info.label_space == "cityscapes-19"


def test_espnet_official_checkpoint_strict_and_frankfurt_accuracy():
    weights = _shared("weights", "espnet", ESPNET_FILE)
    image_path = _shared("cityscapes_samples", f"{FRANKFURT}_leftImg8bit.png")
    labels = np.asarray(Image.open(_shared("cityscapes_samples", f"{FRANKFURT}_gtFine_labelTrainIds.png")))

    state = torch.load(weights, map_location="cpu", weights_only=True)
    assert sum(v.numel() for v in state.values()) == 368_341
    net = ESPNet(classes=20, p=2, q=8)
    assert not net.load_state_dict(state, strict=True).missing_keys
    assert sum(p.numel() for p in net.parameters()) == 364_569  # learnable; + BN running statistics = 368,341

    model = ESPNetCityscapes("cityscapes")
    model.weights = {ESPNET_FILE: weights}
    model.load(torch.device("cpu"))
    assert sum(v.numel() for v in model.network().state_dict().values() if v.dtype.is_floating_point) == 368_341
    image = read_image(image_path)
    pred = model.predict(image)
    assert pred.dtype == np.int64 and pred.shape == image.shape[:2] == (1024, 2048)
    assert set(np.unique(pred)) <= set(range(19)) | {255}

    small = np.asarray(Image.fromarray(pred.astype(np.uint8)).resize(labels.shape[::-1], Image.NEAREST)).astype(np.int64)
    valid = labels != 255
    accuracy = float((small[valid] == labels[valid]).mean())
    road_iou = float(((small == 0) & (labels == 0) & valid).sum() / (((small == 0) | (labels == 0)) & valid).sum())
    print(f"ESPNet {FRANKFURT}: pixel accuracy {accuracy:.4f}, road IoU {road_iou:.4f}")
    assert road_iou > 0.85
    assert accuracy > 0.75


def test_espnet_wrong_checkpoint_names_the_file(tmp_path):
    state = ESPNet(classes=20, p=2, q=8).state_dict()
    state.pop("classifier.weight")
    bad = tmp_path / "espnet_missing_key.pth"
    torch.save(state, bad)
    model = ESPNetCityscapes()
    model.weights = {ESPNET_FILE: bad}
    with pytest.raises(BadInputError, match="espnet_missing_key.pth") as info:
        model.load(torch.device("cpu"))
    assert "classifier.weight" in str(info.value)


def test_labels_from_logits_equals_full_interpolation():
    torch.manual_seed(0)
    logits = torch.randn(5, 7, 9)
    full = torch.nn.functional.interpolate(logits[None], size=(31, 23), mode="bilinear", align_corners=False)[0].argmax(0)
    got = labels_from_logits(logits, (31, 23), ignore_class=4, band_rows=8)
    expected = full.numpy().copy()
    expected[expected == 4] = 255
    assert got.dtype == np.int64 and np.array_equal(got, expected)


# SegFormer ---------------------------------------------------------------------------------------------
def _tiny_segformer(folder: Path, names=CITYSCAPES_19) -> Path:
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    config = SegformerConfig(num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16], patch_sizes=[7, 3],
                             strides=[4, 2], num_attention_heads=[1, 1], mlp_ratios=[2, 2], decoder_hidden_size=16,
                             num_labels=len(names), id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    torch.manual_seed(0)
    SegformerForSemanticSegmentation(config).save_pretrained(folder)
    SegformerImageProcessor(size={"height": 64, "width": 96}).save_pretrained(folder)
    return folder


def test_segformer_local_folder_predicts_train_ids(tmp_path):
    pytest.importorskip("transformers")
    folder = _tiny_segformer(tmp_path / "tiny_segformer")
    model = create_task_model(f"segformer:{folder}")
    assert isinstance(model, SegFormer) and model.required_weights() == ()
    assert model.unavailable_reason() is None
    model.load(torch.device("cpu"))
    assert "'height': 64" in model.preprocessing_used
    image = np.random.default_rng(0).random((45, 70, 3), dtype=np.float32)
    pred = model.predict(image)
    assert pred.dtype == np.int64 and pred.shape == (45, 70)
    assert pred.min() >= 0 and pred.max() <= 18


def test_segformer_label_mismatch_is_named(tmp_path):
    pytest.importorskip("transformers")
    names = ("wall", "floor", "ceiling") + CITYSCAPES_19[3:]
    folder = _tiny_segformer(tmp_path / "ade_like", names)
    reason = SegFormer(str(folder)).unavailable_reason()
    assert reason and "road, sidewalk, building" in reason and "floor, ceiling" in reason
    # a permuted Cityscapes order with a void class maps by name
    lookup = cityscapes_lookup(["unlabeled", *reversed(CITYSCAPES_19)], "t")
    assert lookup[0] == 255 and lookup[1] == 18 and lookup[19] == 0


def test_segformer_hub_id_offline_fails_fast_and_says_how(monkeypatch, tmp_path):
    pytest.importorskip("transformers")
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty_hf_cache"))  # not cached, whatever the user has
    hub_id = "nvidia/segformer-b0-finetuned-cityscapes-1024-1024"
    model = create_task_model("segformer")
    assert model.variant == hub_id
    start = time.perf_counter()
    reason = model.unavailable_reason()
    with pytest.raises(UnavailableError) as info:
        model.load(torch.device("cpu"))
    assert time.perf_counter() - start < 3.0
    for text in (reason, str(info.value)):
        assert hub_id in text and "HF_HUB_OFFLINE=1" in text and "save_pretrained" in text and "segformer:DIR" in text
    missing = SegFormer("./no/such/folder").unavailable_reason()
    assert missing and "no/such/folder" in missing and "not found" in missing


# mmseg -------------------------------------------------------------------------------------------------
def test_mmseg_spec_syntax():
    assert split_spec("cfg/a.py") == (Path("cfg/a.py"), Path("cfg/a.pth"))
    assert split_spec("cfg/a.py@w/b@1.pth") == (Path("cfg/a.py"), Path("w/b@1.pth"))


def test_mmseg_unavailable_reason_names_install_steps(monkeypatch):
    real_import = builtins.__import__

    def failing_import(name, *args, **kwargs):
        if name == "mmseg" or name.startswith("mmseg."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", failing_import)
    reason = create_task_model("mmseg:configs/some_model.py").unavailable_reason()
    assert reason and "\n" not in reason
    assert "mmsegmentation cannot be imported" in reason
    for step in ("mmengine", "mmcv==2.1.0", "c++20", "mmsegmentation==1.2.2", "--no-build-isolation"):
        assert step in reason
    with pytest.raises(UnavailableError, match="mmsegmentation==1.2.2"):
        MMSeg("configs/some_model.py").load(torch.device("cpu"))


TINY_MMSEG_CONFIG = """
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                         bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size_divisor=32)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(type='MixVisionTransformer', in_channels=3, embed_dims=8, num_stages=2, num_layers=[1, 1],
                  num_heads=[1, 2], patch_sizes=[7, 3], strides=[4, 2], sr_ratios=[2, 1], out_indices=(0, 1), mlp_ratio=2,
                  qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0),
    decode_head=dict(type='SegformerHead', in_channels=[8, 16], in_index=[0, 1], channels=16, dropout_ratio=0.1,
                     num_classes=19, norm_cfg=norm_cfg, align_corners=False,
                     loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 64), keep_ratio=True),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(type='CityscapesDataset', pipeline=test_pipeline))
default_scope = 'mmseg'
"""


def test_mmseg_adapter_runs(tmp_path):
    from bench.tasks.models.mmseg import mmseg_import_error

    error = mmseg_import_error()
    if error is not None:
        pytest.skip(f"mmsegmentation is not importable here ({error}); see bench/tasks/models/mmseg.py for the install steps")
    from mmseg.apis import init_model

    config = tmp_path / "tiny_segformer_city.py"
    config.write_text(TINY_MMSEG_CONFIG)
    torch.manual_seed(0)
    net = init_model(str(config), checkpoint=None, device="cpu")
    torch.save({"meta": {"dataset_meta": {"classes": list(CITYSCAPES_19)}}, "state_dict": net.state_dict()},
               tmp_path / "tiny_segformer_city.pth")

    model = create_task_model(f"mmseg:{config}")
    assert model.unavailable_reason() is None
    model.load(torch.device("cpu"))
    image = np.random.default_rng(0).random((50, 75, 3), dtype=np.float32)
    pred = model.predict(image)
    assert pred.dtype == np.int64 and pred.shape == (50, 75)
    assert pred.min() >= 0 and pred.max() <= 18
    # the adapter's prediction equals the config's own pipeline on the same 8-bit BGR image
    from mmseg.apis import inference_model

    bgr8 = np.ascontiguousarray((image * 255 + 0.5).astype(np.uint8)[..., ::-1])
    net.load_state_dict(torch.load(tmp_path / "tiny_segformer_city.pth", weights_only=True)["state_dict"])
    assert np.array_equal(pred, inference_model(net, bgr8).pred_sem_seg.data[0].numpy())

    broken = tmp_path / "broken.pth"
    torch.save({"state_dict": {k: v for k, v in net.state_dict().items() if "decode_head" not in k}}, broken)
    with pytest.raises(BadInputError, match="broken.pth"):
        create_task_model(f"mmseg:{config}@{broken}").load(torch.device("cpu"))
