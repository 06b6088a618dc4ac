"""Downstream evaluation: task models (detectors, segmenters), labels and dataset-level metrics."""
