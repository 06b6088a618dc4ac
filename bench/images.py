"""The one image loader and writer of the project.

Images travel as float32 HxWx3 RGB in [0,1]. Method outputs are stored as 16-bit PNG (lossless at
more than 8-bit precision) so that each metric profile can quantise them to 8 bits its own way.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from bench.errors import BadInputError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_bit_depth(path: Path) -> int | None:
    with open(path, "rb") as handle:
        head = handle.read(26)
    if len(head) < 26 or not head.startswith(_PNG_SIGNATURE):
        return None
    return head[24]


@contextlib.contextmanager
def _strict_decoding():
    """Truncated files must fail even when an imported library (pyiqa's AVA loader does) has set Pillow's
    process-wide ImageFile.LOAD_TRUNCATED_IMAGES."""
    from PIL import ImageFile

    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


def pillow_open(path: Path) -> Image.Image:
    """Pillow's own Image.open. Importing ultralytics replaces Image.open with a wrapper that, on a file Pillow
    cannot identify, tries to pip-install and import pi-heif (ModuleNotFoundError offline, a network install
    online); a corrupt input must instead fail here as a bad image."""
    patches = sys.modules.get("ultralytics.utils.patches")
    opener = getattr(patches, "_image_open", Image.open)
    return opener(path)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as float32 HxWx3 RGB in [0,1].

    8-bit and 16-bit files are supported; greyscale is replicated to three channels; an alpha channel
    is dropped (composited on nothing: deraining inputs have no meaningful transparency).
    Raises BadInputError naming the file when it cannot be decoded (corrupt or truncated).
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{path}: file not found")
    try:
        if _png_bit_depth(path) == 16:
            return _read_png16(path)
        with pillow_open(path) as img, _strict_decoding():
            img.load()  # forces a full decode: truncated JPEG/PNG raise here
            mode = img.mode
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                array = np.asarray(img, dtype=np.float64) / 65535.0
                array = np.repeat(array[..., None], 3, axis=2)
                return np.clip(array, 0, 1).astype(np.float32)
            if mode != "RGB":
                img = img.convert("RGB")
            return np.asarray(img, dtype=np.float32) / 255.0
    except BadInputError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadInputError(
            f"{path}: cannot decode image ({exc}); the file is corrupt or truncated: replace it with a valid copy"
        ) from exc


def _read_png16(path: Path) -> np.ndarray:
    import cv2

    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise BadInputError(f"{path}: cannot decode 16-bit PNG; the file is corrupt: replace it with a valid copy")
    if data.ndim == 2:
        data = np.repeat(data[..., None], 3, axis=2)
    elif data.shape[2] == 4:
        data = cv2.cvtColor(data, cv2.COLOR_BGRA2RGB)
    else:
        data = cv2.cvtColor(data, cv2.COLOR_BGR2RGB)
    scale = 65535.0 if data.dtype == np.uint16 else 255.0
    return (data.astype(np.float64) / scale).astype(np.float32)


def to_uint16(image: np.ndarray) -> np.ndarray:
    """float HxWx3 in [0,1] -> uint16 by rounding (an 8-bit value v maps exactly to v*257)."""
    return np.round(np.clip(image, 0.0, 1.0).astype(np.float64) * 65535.0).astype(np.uint16)


def write_png16(path: str | Path, image: np.ndarray) -> None:
    """Write float HxWx3 RGB in [0,1] (or uint16) as a 16-bit PNG, atomically (tmp file + rename)."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = image if image.dtype == np.uint16 else to_uint16(image)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(data, cv2.COLOR_RGB2BGR)):
        raise OSError(f"{path}: could not write PNG (disk full or folder not writable?)")
    os.replace(tmp, path)


def read_png16(path: str | Path) -> np.ndarray:
    """Read a stored output as uint16 HxWx3 RGB (exactly as written by :func:`write_png16`)."""
    import cv2

    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None or data.dtype != np.uint16 or data.ndim != 3:
        raise BadInputError(f"{path}: not a 16-bit RGB PNG written by bench; delete it so that it is recomputed")
    return cv2.cvtColor(data, cv2.COLOR_BGR2RGB)


def write_png8(path: str | Path, image: np.ndarray) -> None:
    """Write float HxWx3 RGB in [0,1] as an 8-bit PNG (rounded)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    Image.fromarray(data).save(path)


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` (sorted by name, hidden files skipped)."""
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    )
