"""The import-layer contract (.importlinter, docs/design.md "layers") holds, and it bites.

The second test copies the package, adds one upward import (the LUT importing the
command line) and checks that lint-imports then fails: the contract is not a
formality that any code passes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"

pytestmark = pytest.mark.skipif(not LINT.exists(),
                                reason="import-linter is not installed (pip install .[dev])")


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT), "--config", str(root / ".importlinter"), "--no-cache"], cwd=root,
                          capture_output=True, text=True, env={"PYTHONPATH": str(root), "PATH": ""})


def test_the_package_keeps_its_layers() -> None:
    done = lint(ROOT)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "2 kept, 0 broken" in done.stdout


def test_an_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "perfstudent", tmp_path / "perfstudent",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    view = tmp_path / "perfstudent" / "lut" / "view.py"
    view.write_text(view.read_text() + "\n\ndef _upward() -> None:\n    import perfstudent.cli  # noqa\n")
    done = lint(tmp_path)
    assert done.returncode != 0
    assert "perfstudent.lut.view -> perfstudent.cli" in done.stdout
