"""Executors: where the per-image work of a run happens (an executor changes where work runs, never what is computed)."""
