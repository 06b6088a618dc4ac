"""Downloading datasets that have a direct official download (checksum-verified)."""

from __future__ import annotations

import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path

from bench.config import Settings
from bench.data.cards import DatasetCard
from bench.errors import UnavailableError
from bench.methods.weights import download, sha256_file


def fetch_dataset(card: DatasetCard, settings: Settings) -> Path:
    """Download and unpack ``card``'s data into ``<data_root>/<first folder>``; returns that folder."""
    url = card.fetch.get("url")
    if not url:
        raise UnavailableError(
            f"{card.name}: no direct download exists; {card.fetch.get('how_to_get') or card.source_url}")
    if not settings.download:
        raise UnavailableError(f"{card.name}: downloads are switched off (BENCH_NO_DOWNLOAD or [run] download); "
                               f"download {url} yourself and unpack it under {settings.data_root / card.folders[0]}")
    target = settings.data_root / card.folders[0]
    with tempfile.TemporaryDirectory(dir=settings.data_root.parent if settings.data_root.parent.exists() else None) as tmp:
        archive = Path(tmp) / f"{card.name}.{card.fetch.get('archive', 'zip')}"
        try:
            download(url, archive, card.fetch.get("sha256") or None)
        except UnavailableError:
            raise
        except Exception as exc:
            raise UnavailableError(f"{card.name}: download of {url} failed ({type(exc).__name__}: {exc}); check the "
                                   f"network, or download it yourself and unpack it under {target}") from exc
        digest = sha256_file(archive)
        unpacked = Path(tmp) / "unpacked"
        if card.fetch.get("archive", "zip") == "zip":
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(unpacked)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(unpacked, filter="data")
        source = unpacked
        subdir = card.fetch.get("subdir")
        if subdir:
            matches = [p for p in unpacked.glob(f"*/{subdir}")] + [p for p in unpacked.glob(subdir)]
            if not matches:
                raise UnavailableError(f"{card.name}: {subdir} not found inside the archive from {url}")
            source = matches[0]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, target, dirs_exist_ok=True)
    if not card.fetch.get("sha256"):
        print(f"{card.name}: no published checksum; the downloaded archive has sha256 {digest}")
    return target
