"""Capture intermediate outputs with forward hooks on module paths (torchdistill style).

The model's ``forward`` is never changed: :class:`FeatureCapture` registers a
forward hook on each named module and keeps its latest output.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

import torch
from torch import nn

from perfstudent.errors import InputError


class FeatureCapture:
    """Context manager: ``with FeatureCapture(model, paths) as cap: model(x); cap.outputs()``."""

    def __init__(self, model: nn.Module, paths: Sequence[str]) -> None:
        self.paths = tuple(paths)
        self._store: dict[str, torch.Tensor] = {}
        self._handles: list[Any] = []
        modules = dict(model.named_modules())
        missing = [p for p in self.paths if p not in modules]
        if missing:
            raise InputError(f"model has no module {', '.join(missing)} to capture")
        self._modules = [modules[p] for p in self.paths]

    def __enter__(self) -> FeatureCapture:
        for path, module in zip(self.paths, self._modules, strict=True):
            self._handles.append(module.register_forward_hook(self._hook(path)))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._store.clear()

    def _hook(self, path: str) -> Any:
        def hook(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
            self._store[path] = output
        return hook

    def outputs(self) -> list[torch.Tensor]:
        """The outputs of the captured modules from the latest forward pass, in path order."""
        missing = [p for p in self.paths if p not in self._store]
        if missing:
            raise RuntimeError(f"no output captured for {', '.join(missing)}")
        return [self._store[p] for p in self.paths]
