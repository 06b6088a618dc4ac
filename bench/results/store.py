"""SQLite (WAL) store of per-image results, failures, unavailable cells and run provenance.

Rows are keyed by (method, variant, weights_hash, dataset, image_id, metric, profile, precision). Every
image's figures are written in one transaction, so a crash or Ctrl-C never loses finished work and never
leaves half an image. Reports read only from here: a report never recomputes a metric.

``precision`` (fp32, bf16 or fp16) is the arithmetic the method's network ran in (``bench run --precision``);
stores written before it existed are given the column when opened, every old row fp32.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, started REAL, finished REAL, command TEXT, git_commit TEXT,
    versions TEXT, config_hash TEXT, config TEXT, device TEXT, host TEXT, status TEXT,
    executor TEXT, workers INTEGER, nodes TEXT
);
CREATE TABLE IF NOT EXISTS results (
    method TEXT NOT NULL, variant TEXT NOT NULL, weights_hash TEXT NOT NULL, dataset TEXT NOT NULL,
    image_id TEXT NOT NULL, metric TEXT NOT NULL, profile TEXT NOT NULL, value REAL,
    implementation TEXT, run_id TEXT, created REAL, precision TEXT NOT NULL DEFAULT 'fp32',
    PRIMARY KEY (method, variant, weights_hash, dataset, image_id, metric, profile, precision)
);
CREATE TABLE IF NOT EXISTS failures (
    method TEXT NOT NULL, variant TEXT NOT NULL, weights_hash TEXT NOT NULL, dataset TEXT NOT NULL,
    image_id TEXT NOT NULL, stage TEXT, file TEXT, reason TEXT, run_id TEXT, created REAL,
    precision TEXT NOT NULL DEFAULT 'fp32',
    PRIMARY KEY (method, variant, weights_hash, dataset, image_id, precision)
);
CREATE TABLE IF NOT EXISTS unavailable (
    method TEXT NOT NULL, variant TEXT NOT NULL, dataset TEXT NOT NULL, reason TEXT, kind TEXT,
    run_id TEXT, created REAL,
    PRIMARY KEY (method, variant, dataset)
);
CREATE TABLE IF NOT EXISTS methods (
    method TEXT NOT NULL, variant TEXT NOT NULL, weights_hash TEXT NOT NULL, spec TEXT, label TEXT, kind TEXT,
    paper TEXT, note TEXT, weights TEXT, run_id TEXT, created REAL,
    PRIMARY KEY (method, variant, weights_hash)
);
CREATE TABLE IF NOT EXISTS task_results (
    method TEXT NOT NULL, variant TEXT NOT NULL, weights_hash TEXT NOT NULL, dataset TEXT NOT NULL,
    image_id TEXT NOT NULL, task_model TEXT NOT NULL, reference TEXT NOT NULL, payload TEXT,
    run_id TEXT, created REAL, precision TEXT NOT NULL DEFAULT 'fp32',
    PRIMARY KEY (method, variant, weights_hash, dataset, image_id, task_model, reference, precision)
);
CREATE TABLE IF NOT EXISTS task_references (
    dataset TEXT NOT NULL, image_id TEXT NOT NULL, task_model TEXT NOT NULL, reference TEXT NOT NULL,
    payload TEXT, created REAL,
    PRIMARY KEY (dataset, image_id, task_model, reference)
);
CREATE TABLE IF NOT EXISTS task_setups (
    dataset TEXT NOT NULL, task_model TEXT NOT NULL, reference TEXT NOT NULL, task TEXT, spec TEXT, label TEXT,
    model_label_space TEXT, label_space TEXT, mapping TEXT, paper TEXT, preprocessing TEXT, created REAL,
    PRIMARY KEY (dataset, task_model, reference)
);
"""

#: columns that later versions added to ``runs`` (added to older stores when opened)
RUN_EXECUTION_COLUMNS = {"executor": "TEXT", "workers": "INTEGER", "nodes": "TEXT"}
#: tables whose key gained ``precision`` (older stores are rebuilt once when opened, their rows fp32)
PRECISION_TABLES = ("results", "failures", "task_results")

ANY = "*"  # dataset / image_id of method-level figures (efficiency)
NO_PROFILE = "-"  # profile of figures that no profile affects
FP32 = "fp32"  # the precision of every figure measured before --precision existed, and the default


@dataclass(frozen=True)
class TaskRecord:
    """One image's downstream record: what ``task_model`` (``spec@hash``) found, against ``reference``
    (``labels`` or ``pseudo``). payload: detections or a confusion matrix (JSON-able); reference_payload:
    the reference boxes to keep with it (detection), else None."""

    task_model: str
    reference: str
    payload: dict
    reference_payload: dict | None = None


@dataclass(frozen=True)
class ResultKey:
    """Which method (variant and weights) on which dataset."""

    method: str
    variant: str
    weights_hash: str
    dataset: str
    precision: str = FP32  # the arithmetic the method's network ran in: fp32 | bf16 | fp16

    def output_folder(self, outputs_dir: Path) -> Path:
        """Where the 16-bit outputs of this key are kept: ``<outputs>/<method>/<variant>/<weights_hash>/<dataset>``,
        with ``<weights_hash>@<precision>`` for reduced precision (a bf16 output is never taken for an fp32 one)."""
        run = self.weights_hash if self.precision == FP32 else f"{self.weights_hash}@{self.precision}"
        return Path(outputs_dir) / self.method / self.variant / run / self.dataset


class ResultsStore:
    """Thin typed layer over one SQLite file; safe to reopen after a crash."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # the runner's thread writes; the local pipeline's writer thread reads stored pseudo-labels
        self.db = sqlite3.connect(str(self.path), timeout=60, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self._add_missing_columns("runs", RUN_EXECUTION_COLUMNS)
        self.db.commit()
        for table in PRECISION_TABLES:
            self._add_precision_key(table)

    def _add_missing_columns(self, table: str, columns: dict[str, str]) -> None:
        """Stores written by an earlier version gain the newer columns (empty for their old rows)."""
        have = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
        for name, kind in columns.items():
            if name not in have:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    def _add_precision_key(self, table: str) -> None:
        """A table of an older store gains ``precision`` in its key: SQLite cannot change a primary key, so
        the table is rebuilt once, in one transaction, every old row fp32."""
        def has_precision() -> bool:
            return "precision" in {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}

        if has_precision():
            return
        self.db.execute("BEGIN IMMEDIATE")  # another process may be migrating the same store
        try:
            if not has_precision():
                columns = ", ".join(row[1] for row in self.db.execute(f"PRAGMA table_info({table})"))
                create = re.search(rf"CREATE TABLE IF NOT EXISTS {table} \(.*?\n\);", SCHEMA, re.S).group(0)
                self.db.execute(f"ALTER TABLE {table} RENAME TO old_{table}")
                self.db.execute(create)
                self.db.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM old_{table}")
                self.db.execute(f"DROP TABLE old_{table}")
            self.db.commit()
        except BaseException:
            self.db.rollback()
            raise

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _frame(self, sql: str) -> pd.DataFrame:
        import pandas as pd  # for reports only: `bench run` starts without it

        return pd.read_sql_query(sql, self.db)

    # runs -----------------------------------------------------------------------------------------
    def start_run(self, run_id: str, provenance: dict) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO runs (run_id, started, finished, command, git_commit, versions, config_hash, "
                "config, device, host, status, executor) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, time.time(), None, provenance.get("command"), provenance.get("git_commit"),
                 json.dumps(provenance.get("versions", {})), provenance.get("config_hash"),
                 json.dumps(provenance.get("config", {})), provenance.get("device"), provenance.get("host"), "running",
                 provenance.get("executor", "local")),
            )

    def finish_run(self, run_id: str, status: str = "finished", *, workers: int | None = None,
                   nodes: list[str] | None = None) -> None:
        """status: finished | interrupted; workers: how many processes measured images; nodes: the hosts
        (name and address) that returned results."""
        with self.db:
            self.db.execute("UPDATE runs SET finished=?, status=?, workers=?, nodes=? WHERE run_id=?",
                            (time.time(), status, workers, json.dumps(nodes) if nodes is not None else None, run_id))

    def runs(self) -> pd.DataFrame:
        return self._frame("SELECT * FROM runs ORDER BY started")

    # methods --------------------------------------------------------------------------------------
    def record_method(self, method: str, variant: str, weights_hash: str, *, spec: str, label: str, kind: str,
                      paper: str, note: str, weights: dict[str, str], run_id: str) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO methods VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (method, variant, weights_hash, spec, label, kind, paper, note, json.dumps(weights), run_id,
                 time.time()),
            )

    # results --------------------------------------------------------------------------------------
    def done_metrics(self, key: ResultKey, image_id: str) -> set[tuple[str, str]]:
        """(metric, profile) pairs already stored for this image."""
        rows = self.db.execute(
            "SELECT metric, profile FROM results WHERE method=? AND variant=? AND weights_hash=? AND dataset=? AND image_id=? "
            "AND precision=?", (key.method, key.variant, key.weights_hash, key.dataset, image_id, key.precision),
        )
        return set(rows.fetchall())

    def done_images(self, key: ResultKey) -> dict[str, set[tuple[str, str]]]:
        """image_id -> stored (metric, profile) pairs, for one method/dataset (one query)."""
        out: dict[str, set[tuple[str, str]]] = {}
        rows = self.db.execute(
            "SELECT image_id, metric, profile FROM results WHERE method=? AND variant=? AND weights_hash=? AND dataset=? "
            "AND precision=?", (key.method, key.variant, key.weights_hash, key.dataset, key.precision),
        )
        for image_id, metric, profile in rows:
            out.setdefault(image_id, set()).add((metric, profile))
        return out

    def done_task_images(self, key: ResultKey) -> dict[str, set[tuple[str, str]]]:
        """image_id -> stored (task_model, reference) pairs, for one method/dataset (one query)."""
        out: dict[str, set[tuple[str, str]]] = {}
        rows = self.db.execute(
            "SELECT image_id, task_model, reference FROM task_results WHERE method=? AND variant=? AND weights_hash=? "
            "AND dataset=? AND precision=?", (key.method, key.variant, key.weights_hash, key.dataset, key.precision))
        for image_id, task_model, reference in rows:
            out.setdefault(image_id, set()).add((task_model, reference))
        return out

    def put_image(self, key: ResultKey, image_id: str, values: Iterable[tuple[str, str, float, str]], run_id: str,
                  task_records: Iterable[TaskRecord] = ()) -> None:
        """Store one image's figures, (metric, profile, value, implementation), and its downstream records in
        one transaction, and clear an earlier failure of that image."""
        now = time.time()
        records = list(task_records)
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO results (method, variant, weights_hash, dataset, image_id, metric, profile, value, "
                "implementation, run_id, created, precision) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [(key.method, key.variant, key.weights_hash, key.dataset, image_id, m, p, v, impl, run_id, now,
                  key.precision) for m, p, v, impl in values],
            )
            self.db.executemany(
                "INSERT OR REPLACE INTO task_results (method, variant, weights_hash, dataset, image_id, task_model, "
                "reference, payload, run_id, created, precision) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [(key.method, key.variant, key.weights_hash, key.dataset, image_id, r.task_model, r.reference,
                  json.dumps(r.payload), run_id, now, key.precision) for r in records],
            )
            self.db.executemany(
                "INSERT OR REPLACE INTO task_references VALUES (?,?,?,?,?,?)",
                [(key.dataset, image_id, r.task_model, r.reference, json.dumps(r.reference_payload), now)
                 for r in records if r.reference_payload is not None],
            )
            self.db.execute(
                "DELETE FROM failures WHERE method=? AND variant=? AND weights_hash=? AND dataset=? AND image_id=? "
                "AND precision=?", (key.method, key.variant, key.weights_hash, key.dataset, image_id, key.precision),
            )

    def put_failure(self, key: ResultKey, image_id: str, stage: str, file: str, reason: str, run_id: str) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO failures (method, variant, weights_hash, dataset, image_id, stage, file, reason, "
                "run_id, created, precision) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (key.method, key.variant, key.weights_hash, key.dataset, image_id, stage, file, reason, run_id, time.time(),
                 key.precision),
            )

    def put_unavailable(self, method: str, variant: str, dataset: str, reason: str, kind: str, run_id: str) -> None:
        """A method (dataset="*") or dataset (method="*") that could not run, with the reason."""
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO unavailable VALUES (?,?,?,?,?,?,?)",
                (method, variant, dataset, reason, kind, run_id, time.time()),
            )

    def clear_unavailable(self, method: str, variant: str, dataset: str) -> None:
        with self.db:
            self.db.execute("DELETE FROM unavailable WHERE method=? AND variant=? AND dataset=?", (method, variant, dataset))

    def record_task_setup(self, dataset: str, task_model: str, reference: str, **fields: str) -> None:
        """What a downstream figure means: task model, label spaces and mapping (for table captions)."""
        cols = ("task", "spec", "label", "model_label_space", "label_space", "mapping", "paper", "preprocessing")
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO task_setups VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                            (dataset, task_model, reference, *(fields.get(c, "") for c in cols), time.time()))

    def task_reference(self, dataset: str, image_id: str, task_model: str, reference: str) -> dict | None:
        row = self.db.execute("SELECT payload FROM task_references WHERE dataset=? AND image_id=? AND task_model=? "
                              "AND reference=?", (dataset, image_id, task_model, reference)).fetchone()
        return json.loads(row[0]) if row else None

    # reading --------------------------------------------------------------------------------------
    def results(self) -> pd.DataFrame:
        return self._frame("SELECT * FROM results")

    def failures(self) -> pd.DataFrame:
        return self._frame("SELECT * FROM failures ORDER BY method, dataset, image_id")

    def unavailable(self) -> pd.DataFrame:
        return self._frame("SELECT * FROM unavailable")

    def methods(self) -> pd.DataFrame:
        return self._frame("SELECT * FROM methods")

    def task_results(self) -> pd.DataFrame:
        return self._frame("SELECT * FROM task_results")

    def task_references(self) -> pd.DataFrame:
        return self._frame("SELECT * FROM task_references")

    def task_setups(self) -> pd.DataFrame:
        return self._frame("SELECT * FROM task_setups")
