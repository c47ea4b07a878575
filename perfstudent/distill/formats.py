"""Readers for on-disk dataset formats; each returns uint8 N×C×H×W images and int64 labels.

All of them work offline and raise :class:`InputError` saying where they
looked and what they expected. CIFAR's python batches are pickles: they are
read with :class:`RestrictedUnpickler`, which only rebuilds plain containers
and numpy arrays (never ``torch.load``, never an unrestricted ``pickle.load``).
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from perfstudent.errors import InputError
from perfstudent.resources import check_memory

Arrays = tuple[torch.Tensor, torch.Tensor]

# --------------------------------------------------------------------- IDX (MNIST family)

_IDX_UBYTE = 0x08


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped): magic ``00 00 08 ndim``, big-endian dims, uint8 data."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read IDX file {path}: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _IDX_UBYTE or not 1 <= raw[3] <= 4:
        raise InputError(f"{path} is not an IDX uint8 file (bad magic number)")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise InputError(f"{path}: IDX header says {dims} but holds {data.size} bytes")
    return data.reshape(dims)


def read_idx_pair(images: Path, labels: Path) -> Arrays:
    """Images (N×H×W) and labels (N) of one IDX split, as N×1×H×W uint8 and int64."""
    x, y = read_idx(images), read_idx(labels)
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise InputError(f"{images} / {labels}: expected N×H×W images and N labels, "
                         f"got shapes {x.shape} and {y.shape}")
    return torch.from_numpy(x.copy()).unsqueeze(1), torch.from_numpy(y.astype(np.int64))


# --------------------------------------------------------------------- CIFAR pickles

_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
    ("builtins", "bytearray"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds only plain containers, strings, numbers and numpy arrays."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_pickle_safely(path: Path) -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler` (``encoding='bytes'``, CIFAR's format)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # any failure of an untrusted file is bad input
        raise InputError(f"{path} is not a CIFAR python batch: {exc}") from None


def _key(batch: dict[Any, Any], name: str) -> Any:
    for key in (name.encode(), name):
        if key in batch:
            return batch[key]
    raise KeyError(name)


def read_cifar_batch(path: Path, label_key: str) -> Arrays:
    """One CIFAR python batch: ``data`` N×3072 uint8 (RGB planes, 32×32) and ``label_key`` labels."""
    batch = load_pickle_safely(path)
    try:
        data = np.asarray(_key(batch, "data"), dtype=np.uint8)
        labels = np.asarray(_key(batch, label_key), dtype=np.int64)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: expected a dict with 'data' and '{label_key}' ({exc})") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise InputError(f"{path}: expected data N×3072 and N labels, got {data.shape} and {labels.shape}")
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()), torch.from_numpy(labels)


def read_cifar(root: Path, variant: str) -> tuple[Arrays, Arrays, int]:
    """CIFAR-10 (``data_batch_1..5``, ``test_batch``) or CIFAR-100 (``train``, ``test``) under ``root``."""
    subdir = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}[variant]
    if (root / subdir).is_dir():
        root = root / subdir
    if variant == "cifar10":
        train_files = [root / f"data_batch_{i}" for i in range(1, 6)]
        test_files, key, classes = [root / "test_batch"], "labels", 10
    else:
        train_files, test_files, key, classes = [root / "train"], [root / "test"], "fine_labels", 100
    missing = [p.name for p in [*train_files, *test_files] if not p.is_file()]
    if missing:
        raise InputError(f"{variant}: looked in {root} for the python batches "
                         f"({', '.join(p.name for p in [*train_files, *test_files])}); missing "
                         f"{', '.join(missing)}")
    train = [read_cifar_batch(p, key) for p in train_files]
    test = [read_cifar_batch(p, key) for p in test_files]
    cat = lambda parts: (torch.cat([a for a, _ in parts]), torch.cat([b for _, b in parts]))  # noqa: E731
    return cat(train), cat(test), classes


# --------------------------------------------------------------------- image folders

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".webp", ".tif", ".tiff"}


def folder_classes(split_dir: Path) -> list[str]:
    """Sorted class names (sub-directories) of one split directory."""
    if not split_dir.is_dir():
        raise InputError(f"imagefolder: {split_dir} is not a directory "
                         "(expected PATH/train/<class>/*.png|jpg and PATH/val/<class>/...)")
    classes = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    if not classes:
        raise InputError(f"imagefolder: {split_dir} has no class sub-directories")
    return classes


def read_image_folder(split_dir: Path, classes: list[str], size: int) -> Arrays:
    """Every image under ``split_dir/<class>/``: RGB, shorter side resized to ``size``, centre square.

    Refused before any image is decoded: a folder whose images at ``size`` do not fit
    in memory. Refused naming the file: an image PIL cannot read, and one larger than
    PIL's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``; PIL only warns below
    twice that, this refuses from the limit on).
    """
    from PIL import Image

    files: list[tuple[Path, int]] = []
    for label, name in enumerate(classes):
        class_dir = split_dir / name
        if class_dir.is_dir():
            files += [(p, label) for p in sorted(class_dir.iterdir())
                      if p.suffix.lower() in _IMAGE_SUFFIXES]
    if not files:
        raise InputError(f"imagefolder: no images ({', '.join(sorted(_IMAGE_SUFFIXES))}) under {split_dir}")
    check_memory(len(files) * 3 * size * size,
                 f"imagefolder: {len(files)} images of {split_dir} at {size}x{size} pixels")
    images, labels = [], []
    for path, label in files:
        images.append(torch.from_numpy(_read_image(path, size, Image)).permute(2, 0, 1))
        labels.append(label)
    return torch.stack(images), torch.tensor(labels, dtype=torch.int64)


def _read_image(path: Path, size: int, image_module: Any) -> np.ndarray:
    """One image as ``size``×``size``×3 uint8; InputError naming ``path`` if it cannot be."""
    bombs = (image_module.DecompressionBombError, image_module.DecompressionBombWarning)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", image_module.DecompressionBombWarning)
            with image_module.open(path) as img:
                return _resize_center(img.convert("RGB"), size)
    except bombs as exc:
        raise InputError(f"imagefolder: refusing image {path}: {_first_line(exc)}") from None
    except Exception as exc:  # a broken file can make any of PIL's decoders raise anything
        raise InputError(f"imagefolder: cannot read image {path}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _resize_center(img: Any, size: int) -> np.ndarray:
    from PIL import Image

    w, h = img.size
    scale = size / min(w, h)
    img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.BILINEAR)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8).copy()
