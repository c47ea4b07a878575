"""A built wheel ships the whole package: every ``perfstudent/**/*.py`` and the C data file.

The wheel is built (``pip wheel --no-deps --no-build-isolation``) from a copy of the
checkout's tracked files, so the test sees what a user's ``pip install .`` gets and
leaves no ``build/`` folder in the checkout.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tracked_files() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the tracked file list is unknown")
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if (ROOT / line).is_file()]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    src = tmp_path_factory.mktemp("src")
    for name in _tracked_files():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(dist), str(src)], check=True, capture_output=True, text=True)
    (wheel,) = dist.glob("perfstudent-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def test_wheel_holds_every_module_of_the_source_tree(wheel_names: set[str]) -> None:
    sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "perfstudent").rglob("*.py")
               if "__pycache__" not in p.parts}
    assert "perfstudent/profiler/sweep.py" in sources
    missing = sorted(sources - wheel_names)
    assert not missing, f"the wheel lacks {missing}"


def test_wheel_holds_the_data_files_and_the_entry_point(wheel_names: set[str]) -> None:
    assert "perfstudent/profiler/tvm_support/layer_runner.c" in wheel_names
    (entry_points,) = [n for n in wheel_names if n.endswith(".dist-info/entry_points.txt")]
    assert entry_points.startswith("perfstudent-")
    assert not [n for n in wheel_names if n.startswith(("tests/", "benchmarks/"))]
