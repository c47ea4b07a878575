"""Fixtures shared by several test files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.distill_helpers import tiny_spec


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny training WidthSpec (``distill_helpers.tiny_spec``) saved as JSON."""
    path = tmp_path_factory.mktemp("spec") / "tiny.json"
    tiny_spec().save(path)
    return path
