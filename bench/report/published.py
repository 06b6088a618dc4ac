"""Reproduction check: each measured cell next to the published figure, under the paper's convention.

The figures are data (``published.toml``, each source with its citation and convention); this module only
matches them with the store's cells. A comparison reads "reproduced" when |measured - published| is at or
under the stated tolerance, over all the dataset's images and under the source's profile.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.errors import BadInputError
from bench.report.tables import LABELS, SCALE, format_value, info_of

PUBLISHED_FILE = Path(__file__).with_name("published.toml")
ANY_PROFILE = "*"


@dataclass(frozen=True)
class Source:
    """A published table: what it is (citation), its convention and whether a verdict makes sense."""

    id: str
    citation: str
    profile: str  # a full-reference profile, "-" (no-reference) or "*" (not stated: any stored profile)
    convention: str
    verdict: bool


@dataclass(frozen=True)
class Figure:
    """One published number, in the paper's units (downstream figures in %)."""

    source: Source
    method: str  # a method name (any variant) or a canonical spec (that variant only)
    row: str  # the paper's row label
    dataset: str
    metric: str
    value: float

    def matches(self, spec: str) -> bool:
        return spec == self.method if ":" in self.method else spec.partition(":")[0] == self.method


@dataclass
class Comparison:
    """A published figure beside one stored method's cell (measured: None when not measured as published)."""

    figure: Figure
    spec: str
    label: str
    profile: str
    measured: float | None  # in the paper's units
    n: int
    expected_n: int | None
    tolerance: float
    verdict: str
    measured_text: str = ""
    difference_text: str = ""


@dataclass
class Reproduction:
    """The comparisons of one source, for the report."""

    source: Source
    comparisons: list[Comparison] = field(default_factory=list)
    tolerances: dict[str, float] = field(default_factory=dict)

    @property
    def caption(self) -> str:
        tol = ", ".join(f"{LABELS.get(m, m)} {t:g}" + (f" {info_of(m).unit}" if info_of(m).unit else "")
                        for m, t in self.tolerances.items())
        rule = (f"a cell is reproduced when it is within {tol} of the published figure, measured on all the "
                f"dataset's images" if self.source.verdict else "shown for comparison, without a verdict")
        return f"{self.source.citation}. Convention: {self.source.convention}. Profile {self.source.profile}; {rule}."


def load_published(path: Path = PUBLISHED_FILE) -> tuple[list[Figure], dict[str, float]]:
    """Every published figure and the tolerance per metric (units as printed)."""
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BadInputError(f"published figures {path}: cannot read ({exc}); fix the TOML") from exc
    figures = []
    for item in raw.get("source", []):
        source = Source(item["id"], item["citation"], item["profile"], item.get("convention", ""),
                        bool(item.get("verdict", True)))
        metrics = item["metrics"]
        for row in item["rows"]:
            for dataset, values in row.items():
                if dataset in ("method", "row"):
                    continue
                names = metrics[dataset] if isinstance(metrics, dict) else metrics
                if len(names) != len(values):
                    raise BadInputError(f"published figures {path}: {source.id} row {row['row']} on {dataset} has "
                                        f"{len(values)} figures for metrics {names}; give one per metric")
                figures += [Figure(source, row["method"], row["row"], dataset, m, float(v))
                            for m, v in zip(names, values, strict=True)]
    return figures, {k: float(v) for k, v in raw.get("tolerance", {}).items()}


def _signed(metric: str, value: float) -> str:
    """A difference as printed: +0.12, -0.0040, ±0.00 when it rounds to zero."""
    text = format_value(metric, abs(value) / SCALE.get(metric, 1.0))
    if not any(c in "123456789" for c in text):
        return "±" + text
    return ("+" if value >= 0 else "-") + text


def _compare(figure: Figure, spec: str, label: str, cells: pd.DataFrame, expected_n: int | None,
             tolerance: float) -> list[Comparison]:
    """cells: the summary rows of ``spec`` on the figure's dataset and metric (every profile)."""
    wanted = cells if figure.source.profile == ANY_PROFILE else cells[cells["profile"] == figure.source.profile]
    if wanted.empty:
        stored = ", ".join(sorted(set(cells["profile"])))
        return [Comparison(figure, spec, label, figure.source.profile, None, 0, expected_n, tolerance,
                           f"not measured under {figure.source.profile} (stored: {stored}); rerun with "
                           f"--profile {figure.source.profile} or all")]
    out = []
    for cell in wanted.itertuples():
        measured = cell.mean * SCALE.get(figure.metric, 1.0)
        difference = measured - figure.value
        if expected_n is not None and cell.n < expected_n:
            verdict = f"partial: {cell.n} of {expected_n} images"
        elif not figure.source.verdict:
            verdict = "no verdict (setup not stated)"
        elif math.isfinite(difference) and abs(difference) <= tolerance + 1e-9:
            verdict = "reproduced"
        else:
            verdict = "not reproduced"
        out.append(Comparison(figure, spec, label, cell.profile, measured, int(cell.n), expected_n, tolerance, verdict,
                              format_value(figure.metric, cell.mean), _signed(figure.metric, difference)))
    return out


def reproduction(summary_all: pd.DataFrame, expected_counts: dict[str, int],
                 path: Path = PUBLISHED_FILE) -> list[Reproduction]:
    """Comparisons for every published figure whose method and dataset have stored cells.

    summary_all: :func:`bench.report.summary.summarise` with ``images="all"`` (each method over its own images,
    as a paper reports); expected_counts: dataset name -> image count of the full set (from its card).
    """
    figures, tolerances = load_published(path)
    groups: dict[str, Reproduction] = {}
    specs = sorted(set(summary_all["method"]))
    labels = dict(zip(summary_all["method"], summary_all["label"], strict=False))
    for figure in figures:
        here = summary_all[(summary_all["dataset"] == figure.dataset) & (summary_all["metric"] == figure.metric)]
        for spec in (s for s in specs if figure.matches(s)):
            cells = here[here["method"] == spec]
            if cells.empty:
                continue
            group = groups.setdefault(figure.source.id, Reproduction(figure.source))
            group.tolerances.setdefault(figure.metric, tolerances.get(figure.metric, 0.0))
            expected = expected_counts.get(figure.dataset.partition(":")[0])
            group.comparisons += _compare(figure, spec, labels.get(spec, spec), cells, expected,
                                          tolerances.get(figure.metric, 0.0))
    return list(groups.values())


def reproduction_frame(groups: list[Reproduction]) -> pd.DataFrame:
    """Long format for CSV: one row per comparison."""
    rows = [{"source": g.source.id, "method": c.spec, "label": c.label, "paper_row": c.figure.row,
             "dataset": c.figure.dataset, "metric": c.figure.metric, "profile": c.profile,
             "published": c.figure.value, "measured": c.measured,
             "difference": None if c.measured is None else c.measured - c.figure.value,
             "tolerance": c.tolerance, "n": c.n, "expected_n": c.expected_n, "verdict": c.verdict}
            for g in groups for c in g.comparisons]
    return pd.DataFrame(rows, columns=["source", "method", "label", "paper_row", "dataset", "metric", "profile",
                                       "published", "measured", "difference", "tolerance", "n", "expected_n", "verdict"])
