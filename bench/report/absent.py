"""The "Not evaluated" section: one compact table (what, why in one line, the fix), identical reasons grouped.

Reasons are stored as the one-line messages the harness prints ("thing: reason; fix", the house style).
Missing weights are recognised and shortened to "weights missing (...)" with a command as the fix (the
full instructions are one `bench info NAME` away); any other reason is split at its first "; ".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from bench.methods.api import canonical_spec
from bench.results.store import ANY

KINDS = ("method", "method-dataset", "dataset", "metric", "task-model")
_WEIGHTS = re.compile(r"weights file (?P<file>\S+) (not found|at \S+ has the wrong sha256)")
_URL = re.compile(r"download it from (?P<url>\S+)")
_FOLDER = re.compile(r"put it in (?P<folder>\S+?)/?,")


@dataclass(frozen=True)
class Absent:
    """One row of the table: ``what`` (comma list when grouped), ``why`` (one line) and ``fix``."""

    what: str
    why: str
    fix: str
    count: int = 1


def _subject(row) -> tuple[str, str]:
    """(what, the spec or name the fix commands take) of one stored unavailable row."""
    if row.kind == "dataset":
        return f"dataset {row.dataset}", row.dataset
    if row.kind == "metric":
        name = str(row.dataset).removeprefix("metric:")
        return f"metric {name}", name
    if row.kind == "task-model":
        name = str(row.dataset).removeprefix("task-model:")
        return f"task model {name}", name
    spec = canonical_spec(row.method, row.variant)
    return (spec if row.dataset == ANY else f"{spec} on {row.dataset}"), spec


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def explain(reason: str, what: str, name: str) -> tuple[str, str, str]:
    """(why, fix for this row, fix when grouped with others of the same why) from a stored reason."""
    text = _one_line(reason)
    weights = _WEIGHTS.search(text)
    if weights:
        file, url, folder = weights["file"], _URL.search(text), _FOLDER.search(text)
        place = f" into {folder['folder']}/" if folder else ""
        if "wrong sha256" in text:
            return ("weights file has the wrong sha256 (corrupt or another release)",
                    f"`bench weights fetch {name}` replaces {file}", "`bench weights verify`, then `bench weights fetch all`")
        if "download failed" in text:
            return ("weights missing; the download failed (offline?)",
                    f"`bench weights fetch {name}` when online, or download {url['url'] if url else file}{place}",
                    "`bench weights fetch all` when online")
        if url is None:
            return ("weights missing; no direct download (cloud drive)", f"`bench info {name}` says where to get {file}",
                    "`bench info NAME` (each name above) says where to get them")
        return ("weights missing (downloads are off)", f"`bench weights fetch {name}` (downloads {file}{place})",
                "`bench weights fetch all`")
    body = text
    for prefix in (f"method {name}: ", f"task model {name}: ", f"{what}: ", f"{name}: ", f"{name.partition(':')[0]}: "):
        body = body.removeprefix(prefix)
    why, _, fix = body.partition("; ")
    return why.rstrip("."), fix.rstrip("."), fix.rstrip(".")


def absent_rows(unavailable: pd.DataFrame) -> list[Absent]:
    """Group the stored unavailable cells by (why, fix): one row per distinct reason, in first-seen order."""
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for row in unavailable[unavailable["kind"].isin(KINDS)].itertuples():
        what, name = _subject(row)
        why, fix, shared_fix = explain(row.reason, what, name)
        groups.setdefault((why, shared_fix), []).append((what, fix))
    rows = []
    for (why, shared_fix), members in groups.items():
        whats = list(dict.fromkeys(w for w, _ in members))
        fix = members[0][1] if len({f for _, f in members}) == 1 else shared_fix
        rows.append(Absent(", ".join(whats), why, fix, len(whats)))
    return rows
