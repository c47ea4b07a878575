"""Checkpoints: dicts of state dicts and plain tensors, written atomically, read with ``weights_only=True``.

``last.pt`` = ``{"format": "perfstudent.ckpt/1", "epoch", "model", "optimizer",
"schedule", "rng", "history", "best"}``; ``best.pt`` = ``{"format", "epoch", "model",
"test_acc"}``. Everything in them is a tensor, number, string, list, dict or None,
so ``torch.load(..., weights_only=True)`` (which refuses arbitrary pickled
objects) loads them; a file that is not such a dict is an :class:`InputError`.
"""

from __future__ import annotations

import io
import pickle
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from perfstudent.errors import InputError
from perfstudent.io import atomic_write_bytes

FORMAT = "perfstudent.ckpt/1"


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Serialise ``payload`` with ``torch.save`` and write it atomically (old file kept on failure)."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **payload}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path, what: str = "checkpoint") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; anything but a dict holding a state dict is refused."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} not found: {path}")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols; we refuse below
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, AttributeError,
            TypeError, KeyError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{what} {path} cannot be loaded safely (weights_only): {first}") from None
    if isinstance(data, dict) and "model" not in data and _is_state_dict(data):
        data = {"model": data}  # a bare state dict, e.g. from another tool
    if not isinstance(data, dict) or not _is_state_dict(data.get("model")):
        raise InputError(f"{what} {path} is not a state-dict checkpoint "
                         "(expected a dict of tensors, or a dict with a 'model' state dict)")
    return data


def _is_state_dict(obj: Any) -> bool:
    return (isinstance(obj, dict) and len(obj) > 0
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()))


def rng_state() -> dict[str, Any]:
    """The torch, numpy and python RNG states as tensors and plain values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    version, py_state, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": int(version), "state": torch.tensor(py_state, dtype=torch.int64),
                   "gauss": gauss},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached"]))
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
