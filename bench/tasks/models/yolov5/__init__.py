"""Task model ``yolov5``: the original YOLOv5 (v7.0 release) COCO detectors, read without running pickled code."""
