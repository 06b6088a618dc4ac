"""Dataset cards (datasets/*.toml) and opening a dataset from the data root."""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.config import Settings
from bench.data.layouts import LAYOUT_HELP, LAYOUTS, LayoutMatch, Sample, detect_layout
from bench.errors import BadInputError, UnavailableError, UnknownNameError
from bench.tasks.annotations import LabelSpec

CATEGORIES = ("synthetic-paired", "real-unpaired", "downstream")


@dataclass(frozen=True)
class DatasetCard:
    """What a dataset is and how to find it. Read from ``datasets/<name>.toml``."""

    name: str
    title: str
    category: str
    expected_count: int
    layouts: tuple[str, ...]
    folders: tuple[str, ...] = ()
    paper: str = ""
    source_url: str = ""
    notes: str = ""
    fetch: dict[str, Any] = field(default_factory=dict)
    generator: dict[str, Any] = field(default_factory=dict)
    labels: LabelSpec | None = None  # downstream reference labels ([labels])
    derive: dict[str, Any] = field(default_factory=dict)  # built once from data under the data root ([derive])
    path: Path | None = None

    @property
    def paired(self) -> bool:
        return self.category in ("synthetic-paired", "downstream")

    @property
    def task(self) -> str:
        """The downstream task its labels serve ("" without labels)."""
        return self.labels.task if self.labels else ""

    @property
    def embedded(self) -> bool:
        return bool(self.generator)


def read_card(path: Path) -> DatasetCard:
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BadInputError(f"dataset card {path}: cannot read ({exc}); fix the TOML") from exc
    missing = [k for k in ("name", "title", "category", "expected_count", "layouts") if k not in raw]
    if missing:
        raise BadInputError(f"dataset card {path}: missing field(s) {', '.join(missing)}; see datasets/README.md")
    if raw["category"] not in CATEGORIES:
        raise BadInputError(f"dataset card {path}: category {raw['category']!r} is not one of {', '.join(CATEGORIES)}")
    unknown = [lay for lay in raw["layouts"] if lay not in LAYOUTS]
    if unknown:
        raise BadInputError(f"dataset card {path}: unknown layout(s) {unknown}; known: {', '.join(LAYOUTS)}")
    return DatasetCard(
        name=raw["name"], title=raw["title"], category=raw["category"], expected_count=int(raw["expected_count"]),
        layouts=tuple(raw["layouts"]), folders=tuple(raw.get("folders", [raw["name"]])),
        paper=raw.get("paper", ""), source_url=raw.get("source_url", ""), notes=raw.get("notes", ""),
        fetch=dict(raw.get("fetch", {})), generator=dict(raw.get("generator", {})),
        labels=LabelSpec.from_card(raw["labels"], path) if "labels" in raw else None,
        derive=dict(raw.get("derive", {})), path=path,
    )


def load_cards(cards_dir: Path) -> dict[str, DatasetCard]:
    """Every card in ``cards_dir`` by name."""
    if not cards_dir.is_dir():
        raise BadInputError(f"dataset cards folder {cards_dir} not found; set [paths] cards_dir in bench.toml")
    cards = [read_card(p) for p in sorted(cards_dir.glob("*.toml"))]
    return {c.name: c for c in cards}


_SPEC = re.compile(r"(?P<name>[\w.-]+?)(?::(?P<w>\d+)x(?P<h>\d+))?")


@dataclass(frozen=True)
class DatasetSpec:
    """``NAME`` or ``NAME:WxH`` (inputs resized to W x H before deraining, as some papers did)."""

    name: str
    resize: tuple[int, int] | None = None

    @classmethod
    def parse(cls, text: str) -> DatasetSpec:
        m = _SPEC.fullmatch(text.strip())
        if m is None:
            raise BadInputError(f"dataset spec {text!r}: expected NAME or NAME:WIDTHxHEIGHT (e.g. sirr:481x321)")
        resize = (int(m["w"]), int(m["h"])) if m["w"] else None
        return cls(m["name"], resize)

    def __str__(self) -> str:
        return self.name if self.resize is None else f"{self.name}:{self.resize[0]}x{self.resize[1]}"


@dataclass
class Dataset:
    """An opened dataset: its card, where it was found, and its samples."""

    card: DatasetCard
    spec: DatasetSpec
    root: Path
    match: LayoutMatch

    @property
    def name(self) -> str:
        return str(self.spec)

    @property
    def samples(self) -> list[Sample]:
        return self.match.samples


def get_card(name: str, settings: Settings) -> DatasetCard:
    cards = load_cards(settings.cards_dir)
    if name not in cards:
        close = difflib.get_close_matches(name, list(cards), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownNameError(f"unknown dataset {name!r}.{hint} Run `bench list datasets` to see every dataset card.")
    return cards[name]


def dataset_root(card: DatasetCard, settings: Settings) -> Path:
    """Folder holding ``card``'s data (generating the embedded suite on first use)."""
    if card.embedded:
        from bench.data.embedded import ensure_embedded

        return ensure_embedded(card, settings.cache_dir)
    if card.derive:
        from bench.data.build import ensure_derived

        return ensure_derived(card, settings)
    for folder in card.folders:
        if (settings.data_root / folder).is_dir():
            return settings.data_root / folder
    first = settings.data_root / card.folders[0]
    fetch_hint = (f"run `bench datasets fetch {card.name}`" if card.fetch.get("url")
                  else f"obtain it: {(card.fetch.get('how_to_get') or card.source_url).rstrip('.')}")
    raise UnavailableError(
        f"{card.name}: not found under {first}; {fetch_hint}, or set BENCH_DATA_ROOT / --data-root to the folder that holds it"
    )


def open_dataset(spec: str | DatasetSpec, settings: Settings) -> Dataset:
    """Find and pair a dataset. Raises UnavailableError with the reason and the fix."""
    spec = DatasetSpec.parse(spec) if isinstance(spec, str) else spec
    card = get_card(spec.name, settings)
    root = dataset_root(card, settings)
    match = detect_layout(root, list(card.layouts))
    if match is None:
        expected = "; or ".join(LAYOUT_HELP[lay] for lay in card.layouts)
        raise UnavailableError(f"{card.name}: 0 images found under {root} (expected {expected})")
    return Dataset(card, spec, root, match)


def availability(card: DatasetCard, settings: Settings) -> str | None:
    """None when the dataset can be opened, else the reason (cheap: embedded sets count as available)."""
    if card.embedded:
        return None
    if card.derive:
        source = settings.data_root / card.derive["from"]
        return None if source.is_dir() else (f"{card.name}: built from {source}, which was not found; "
                                             f"{card.fetch.get('how_to_get', '')}".rstrip("; "))
    try:
        root = dataset_root(card, settings)
    except UnavailableError as exc:
        return str(exc)
    if detect_layout(root, list(card.layouts)) is None:
        expected = "; or ".join(LAYOUT_HELP[lay] for lay in card.layouts)
        return f"{card.name}: 0 images found under {root} (expected {expected})"
    return None
