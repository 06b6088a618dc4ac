"""The task-model registry: built-ins arrive through entry points, typos get suggestions, and every
built-in says offline what is missing and how to provide it (never a hang or a traceback)."""

import subprocess
import sys
import time

import pytest

from bench.errors import BadInputError, UnavailableError, UnknownNameError
from bench.methods.weights import resolve_weights
from bench.tasks.registry import TASK_MODELS, create_task_model, parse_tasks


def test_builtins_are_registered_with_their_task_and_label_space():
    assert {"yolov5", "yolo", "espnet", "segformer", "mmseg"} <= set(TASK_MODELS.names())
    assert all(TASK_MODELS.entry(n).source.startswith("entry-point") for n in ("yolov5", "espnet"))
    yolo, espnet = create_task_model("yolov5:yolov5n.pt"), create_task_model("espnet:cityscapes")
    assert (yolo.task, yolo.info.label_space) == ("detection", "coco-80")
    assert (espnet.task, espnet.info.label_space) == ("segmentation", "cityscapes-19")


def test_unknown_names_and_variants_suggest_the_fix():
    with pytest.raises(UnknownNameError, match="Did you mean 'yolov5'"):
        create_task_model("yolov6:yolov6n.pt")
    with pytest.raises(UnknownNameError, match="unknown variant 'yolov5q.pt'"):
        create_task_model("yolov5:yolov5q.pt")
    with pytest.raises(BadInputError, match="unknown task"):
        parse_tasks("detection,depth")
    assert parse_tasks("none") == [] and parse_tasks("segmentation") == ["segmentation"]


@pytest.mark.parametrize("spec, file", [("yolov5:yolov5n.pt", "yolov5n.pt"), ("yolo:yolo11n.pt", "yolo11n.pt"),
                                        ("espnet:cityscapes", "espnet_p_2_q_8.pth")])
def test_missing_weights_name_the_file_the_url_and_the_folder(tmp_path, spec, file):
    model = create_task_model(spec)
    with pytest.raises(UnavailableError) as info:
        resolve_weights(model, tmp_path, allow_download=False)
    message = str(info.value)
    assert message.startswith(f"task model {spec}") and file in message and "https://" in message
    assert str(tmp_path / spec.split(":")[0]) in message


def test_run_lists_an_unavailable_task_model_and_goes_on(downstream_project, tmp_path):
    config = downstream_project
    start = time.time()
    done = subprocess.run([sys.executable, "-m", "bench", "run", "--config", str(config), "--methods", "rainy",
                           "--datasets", "toydet", "--task-model", "yolov5:yolov5s.pt", "--weights-dir",
                           str(tmp_path / "empty"), "--no-progress"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert time.time() - start < 120
    out = " ".join(done.stderr.split())
    assert "task model yolov5:yolov5s.pt: weights file yolov5s.pt not found" in out
    assert "https://github.com/ultralytics/yolov5/releases/download/v7.0/yolov5s.pt" in out
    assert "1 image(s) measured" not in out and "6 image(s) measured" in out  # the deraining figures still run
