"""Metrics: full-reference profiles, no-reference quality, efficiency and downstream tasks."""
