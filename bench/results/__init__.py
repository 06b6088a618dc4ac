"""The results store: per-image figures, failures and run provenance in SQLite."""

from bench.results.store import ResultKey, ResultsStore

__all__ = ["ResultKey", "ResultsStore"]
