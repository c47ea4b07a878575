"""``perfstudent experiment`` and ``quickstart``: the paper's comparison end to end, resumable."""

from __future__ import annotations

from perfstudent.experiment.config import ConfigError, ExperimentConfig, load_config
from perfstudent.experiment.engine import Step, StepOutcome, run_steps
from perfstudent.experiment.steps import Layout, run_experiment

__all__ = ["ConfigError", "ExperimentConfig", "Layout", "Step", "StepOutcome", "load_config",
           "run_experiment", "run_steps"]
