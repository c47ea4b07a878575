"""The quickstart: the experiment on embedded defaults, sized for a few minutes on 2 cores.

ResNet-20 on Fashion-MNIST (a 3,000-image training subset, 28 px) when the
dataset is installed, else scikit-learn's ``digits`` (8 px); this machine's CPU
with ONNX Runtime on 1 thread; budgets at 50% and 75% of the full network's
predicted latency; perf / pruned / uniform students with attention transfer;
one seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perfstudent.errors import InputError
from perfstudent.experiment.config import ExperimentConfig, from_dict


def _fashion_mnist_present() -> bool:
    from perfstudent.distill.data import load_dataset

    try:
        load_dataset("fashion-mnist", train_limit=1, test_limit=1)
    except InputError:
        return False
    return True


def quickstart_defaults(dataset: str | None = None) -> dict[str, Any]:
    """The embedded configuration (a TOML-shaped dict; see the module docstring)."""
    if dataset is None:
        dataset = "fashion-mnist" if _fashion_mnist_present() else "digits"
    small = dataset == "digits"
    data: dict[str, Any] = {"dataset": dataset}
    if not small:
        data.update(train_limit=3000, test_limit=1000)
    return {
        "experiment": {"name": "quickstart", "budgets": [0.5, 0.75],
                       "strategies": ["perf", "pruned", "uniform"], "seeds": [0]},
        "device": {"name": "local", "backend": "onnxruntime", "threads": 1, "protocol": "default"},
        "model": {"family": "resnet20"},
        "data": data,
        # One training thread: on a 2-core machine shared with other jobs, two torch threads
        # oversubscribe the cores (here: 8-17 s per digits batch with two threads, ~0.2 s
        # with one, under a load average of ~10).
        "train": {"epochs": 15 if small else 6, "batch_size": 64, "threads": 1},
        "saliency": {"batches": 10, "batch_size": 64},
        "distill": {"epochs": 10 if small else 4, "batch_size": 64, "threads": 1},
    }


def quickstart_config(out: Path, dataset: str | None = None) -> ExperimentConfig:
    return from_dict(quickstart_defaults(dataset), out.parent if out.parent else Path.cwd())
