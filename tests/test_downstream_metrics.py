"""Downstream figures on hand-computable cases: COCO mAP, confusion-matrix mIoU/mPA, the label mapping,
and label parsing with bad input."""

import json

import numpy as np
import pytest
from PIL import Image

from bench.errors import BadInputError
from bench.tasks.annotations import BoxLabels, LabelError, LabelSpec, read_coco_labels, read_label_png, read_yolo_labels
from bench.tasks.detection_metrics import bootstrap_map, coco_map
from bench.tasks.label_spaces import label_mapping, label_space, require_mapping
from bench.tasks.segmentation_metrics import bootstrap_segmentation, confusion_matrix, segmentation_scores

COCO = label_space("coco-80")


def _refs(boxes_per_image):
    return [BoxLabels(np.asarray(b, float).reshape(-1, 4), np.zeros(len(b), int), np.zeros(len(b), bool))
            for b in boxes_per_image]


def _pred(boxes, scores=None, classes=None):
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    return {"boxes": boxes.tolist(), "scores": list(scores if scores is not None else [0.9] * len(boxes)),
            "classes": list(classes if classes is not None else [0] * len(boxes))}


BOXES = [[[10, 10, 50, 60]], [[20, 5, 70, 40]], [[0, 0, 30, 30]], [[40, 40, 90, 95]]]


def test_perfect_predictions_give_one():
    refs = _refs(BOXES)
    assert coco_map(refs, [_pred(b) for b in BOXES], 80) == {"map": 1.0, "map50": 1.0}


def test_a_missed_box_gives_the_known_101_point_value():
    # 3 of 4 boxes found exactly, no false positive: precision 1 up to recall 0.75, so 76 of COCO's 101 recall
    # points have precision 1 and the rest 0
    refs = _refs(BOXES)
    preds = [_pred(b) for b in BOXES[:3]] + [_pred([])]
    value = coco_map(refs, preds, 80)
    assert value["map"] == pytest.approx(76 / 101, abs=1e-6)
    assert value["map50"] == pytest.approx(76 / 101, abs=1e-6)


def test_a_loose_box_counts_at_iou_05_but_not_at_high_thresholds():
    refs = _refs([[[0, 0, 100, 100]]])
    # IoU 0.7: a true positive for thresholds .50-.70 (5 of the 10), a miss above
    value = coco_map(refs, [_pred([[0, 0, 100, 70]])], 80)
    assert value["map50"] == pytest.approx(1.0)
    assert value["map"] == pytest.approx(0.5, abs=1e-6)


def test_wrong_class_is_a_miss_and_no_boxes_at_all_is_nan():
    refs = _refs(BOXES[:1])
    assert coco_map(refs, [_pred(BOXES[0], classes=[3])], 80)["map"] == 0.0
    assert np.isnan(coco_map(_refs([[]]), [_pred([])], 80)["map"])


def test_bootstrap_interval_contains_the_figure_and_is_seeded():
    refs = _refs(BOXES)
    preds = [_pred(b) for b in BOXES[:3]] + [_pred([])]
    first = bootstrap_map(refs, preds, 80, resamples=40)
    assert first == bootstrap_map(refs, preds, 80, resamples=40)
    low, high = first["map"]
    assert low <= 76 / 101 <= high and low < high


def test_confusion_matrix_miou_and_mpa_by_hand():
    reference = np.array([[0, 0, 1, 1], [0, 2, 1, 9], [2, 2, 2, 9]])  # 9 = ignore
    prediction = np.array([[0, 1, 1, 1], [0, 2, 0, 5], [2, 2, 255, 0]])  # 255: no class predicted
    matrix = confusion_matrix(reference, prediction, 3, ignore_index=9)
    expected = np.array([[2, 1, 0, 0],   # reference 0: two right, one called 1
                         [1, 2, 0, 0],   # reference 1: two right, one called 0
                         [0, 0, 3, 1]])  # reference 2: three right, one without a class
    np.testing.assert_array_equal(matrix, expected)
    scores = segmentation_scores(matrix)
    iou = [2 / (3 + 3 - 2), 2 / (3 + 3 - 2), 3 / (4 + 3 - 3)]
    np.testing.assert_allclose(scores["iou"], iou)
    assert scores["miou"] == pytest.approx(np.mean(iou))
    assert scores["mpa"] == pytest.approx(np.mean([2 / 3, 2 / 3, 3 / 4]))
    assert scores["pixel_accuracy"] == pytest.approx(7 / 10)
    ci = bootstrap_segmentation(np.stack([matrix, np.diag([5, 0, 1]).astype(int) @ np.eye(3, 4, dtype=int)]), 200)
    assert ci["miou"][0] <= ci["miou"][1]


def test_a_class_absent_everywhere_does_not_count():
    matrix = confusion_matrix(np.zeros((2, 2), int), np.zeros((2, 2), int), 3, None)
    scores = segmentation_scores(matrix)
    assert scores["miou"] == 1.0 and scores["mpa"] == 1.0 and np.isnan(scores["iou"][1])


def test_cityscapes_to_camvid_mapping_is_the_declared_one():
    mapping = label_mapping("cityscapes-19", "camvid-11")
    city, camvid = label_space("cityscapes-19"), label_space("camvid-11")
    expected = {"road": "Road", "sidewalk": "Pavement", "building": "Building", "wall": "Building", "fence": "Fence",
                "pole": "Pole", "traffic light": "SignSymbol", "traffic sign": "SignSymbol", "vegetation": "Tree",
                "terrain": "Tree", "sky": "Sky", "person": "Pedestrian", "rider": "Bicyclist",
                "motorcycle": "Bicyclist", "bicycle": "Bicyclist", "car": "Car", "truck": "Car", "bus": "Car",
                "train": "Car"}
    for src, dst in expected.items():
        assert mapping.apply(np.array([city.names.index(src)]))[0] == camvid.names.index(dst)
    assert mapping.apply(np.array([255, -1])).tolist() == [255, 255]  # no class stays no class
    assert "building+wall->Building" in mapping.describe()
    assert label_mapping("coco-80", "coco-80").apply(np.arange(80)).tolist() == list(range(80))
    with pytest.raises(BadInputError, match="no mapping coco-80->camvid-11"):
        require_mapping("coco-80", "camvid-11", "task model x")


def test_cityscapes_label_ids_convert_to_train_ids():
    table = label_space("cityscapes-19").from_label_ids()
    assert table[7] == 0 and table[26] == 13 and table[33] == 18 and table[0] == 255 and table[6] == 255


def test_yolo_labels_parse_and_bad_lines_fail_with_the_reason(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("0 0.5 0.5 0.5 0.25\n\n15 0.25 0.25 0.1 0.1\n")
    labels = read_yolo_labels(path, 200, 100, COCO)
    np.testing.assert_allclose(labels.boxes, [[50, 37.5, 150, 62.5], [40, 20, 60, 30]])
    assert labels.classes.tolist() == [0, 15]
    for text, reason in [("80 0.5 0.5 0.1 0.1", "class id 80 is not in coco-80"),
                         ("0 0.5 0.5", "expected 'class cx cy w h'"),
                         ("0 1.2 0.5 0.5 0.5", "outside the 200x100 image"),
                         ("0 0.5 0.5 0 0.1", "empty box")]:
        path.write_text(text + "\n")
        with pytest.raises(LabelError, match=reason) as info:
            read_yolo_labels(path, 200, 100, COCO)
        assert info.value.file == str(path)
    with pytest.raises(LabelError, match="label file missing"):
        read_yolo_labels(tmp_path / "none.txt", 200, 100, COCO)
    path.write_text("")
    assert len(read_yolo_labels(path, 200, 100, COCO).boxes) == 0  # an empty file: no objects


def test_coco_json_labels_by_category_name_and_unknown_category(tmp_path):
    data = {"images": [{"id": 7, "file_name": "x.jpg", "width": 100, "height": 50}],
            "annotations": [{"id": 1, "image_id": 7, "category_id": 18, "bbox": [10, 5, 20, 10], "iscrowd": 0},
                            {"id": 2, "image_id": 7, "category_id": 1, "bbox": [0, 0, 50, 50], "iscrowd": 1}],
            "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}, {"id": 99, "name": "unicorn"}]}
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    labels = read_coco_labels(path, "x", 200, 100, COCO)  # image read at twice the annotated size
    np.testing.assert_allclose(labels.boxes, [[20, 10, 60, 30], [0, 0, 100, 100]])
    assert labels.classes.tolist() == [COCO.names.index("dog"), 0] and labels.crowd.tolist() == [False, True]
    data["annotations"].append({"id": 3, "image_id": 7, "category_id": 99, "bbox": [1, 1, 2, 2]})
    path.write_text(json.dumps(data))
    with pytest.raises(LabelError, match="unicorn"):
        read_coco_labels(path, "x", 100, 50, COCO)
    with pytest.raises(LabelError, match="no entry for image 'y'"):
        read_coco_labels(path, "y", 100, 50, COCO)


def test_label_png_checks_size_and_values(tmp_path):
    camvid = label_space("camvid-11")
    path = tmp_path / "l.png"
    Image.fromarray(np.array([[0, 3], [11, 10]], np.uint8)).save(path)
    assert read_label_png(path, 2, 2, camvid).tolist() == [[0, 3], [11, 10]]
    with pytest.raises(LabelError, match="label size 2x2 differs from the image"):
        read_label_png(path, 4, 2, camvid)
    Image.fromarray(np.array([[0, 12], [40, 1]], np.uint8)).save(path)
    with pytest.raises(LabelError, match=r"label value\(s\) \[12, 40\]"):
        read_label_png(path, 2, 2, camvid)
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(path)
    with pytest.raises(LabelError, match="mode RGB"):
        read_label_png(path, 2, 2, camvid)


def test_card_label_sections_are_checked():
    with pytest.raises(BadInputError, match="format 'xml'"):
        LabelSpec.from_card({"task": "detection", "format": "xml", "path": "l", "label_space": "coco-80"}, "c.toml")
    with pytest.raises(Exception, match="unknown label space"):
        LabelSpec.from_card({"task": "detection", "format": "yolo", "path": "l", "label_space": "voc"}, "c.toml")
