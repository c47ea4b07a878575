"""Training throughput (images/s): plain training vs attention-transfer distillation of one student.

Runs the real training code (:class:`perfstudent.distill.epoch.StepRunner`,
augmentation included) on the same student in one process, alternating the
variants so background load hits them alike, and reports the median of the
repeats:

- ``plain``: CE only (what ``train`` / ``distill --beta 0`` does);
- ``at``: ``distill`` with β = 1000 — student forward with hooks, the
  teacher's forward (no grad), the AT loss over the 3 stage pairs, backward;
- ``at_cached_teacher`` vs ``plain_fixed_batch``: one fixed batch (no data
  pipeline), student steps with the AT loss against teacher maps computed
  once before timing vs plain CE steps, interleaved step by step: the cost of
  the AT machinery itself (hooks + loss + its backward), without the
  teacher's forward.

The epoch variants alternate their order every repeat.

Writes ``benchmarks/results/at_throughput.json`` and ``.md``.

Example::

    nice -n 10 python benchmarks/at_throughput.py --threads 2 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from perfstudent.distill.data import load_dataset
from perfstudent.distill.distributed import DistContext
from perfstudent.distill.epoch import StepRunner
from perfstudent.distill.hooks import FeatureCapture
from perfstudent.distill.job import Job
from perfstudent.distill.losses import distill_loss
from perfstudent.distill.trainer import TrainConfig
from perfstudent.students import build, full_spec, get_family

RESULTS = Path(__file__).resolve().parent / "results"


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def set_postfix(self, **kwargs: Any) -> None:
        pass


def _epoch_rate(runner: StepRunner, n_images: int, epoch: int) -> float:
    tic = time.perf_counter()
    runner.train_epoch(epoch, _NoBar())
    return n_images / (time.perf_counter() - tic)


def _fixed_batch_rates(runner: StepRunner, teacher: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                      batches: int) -> tuple[float, float]:
    """images/s of plain CE steps and of CE + AT steps against teacher maps cached before timing.

    Both on one fixed batch, interleaved step by step in alternating order, so
    background load and allocator state hit both alike.
    """
    paths = get_family(runner.job.spec.family).stage_paths()
    with torch.no_grad(), FeatureCapture(teacher, paths) as t_cap:
        teacher(x)
        t_feats = [f.clone() for f in t_cap.outputs()]
    model, opt = runner.bare_model.train(), runner.opt
    spent = {0.0: 0.0, 1000.0: 0.0}
    with FeatureCapture(model, paths) as s_cap:
        for i in range(batches):
            for beta in ((0.0, 1000.0) if i % 2 == 0 else (1000.0, 0.0)):
                tic = time.perf_counter()
                loss = distill_loss(model(x), y, s_cap.outputs(), t_feats, beta=beta)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                spent[beta] += time.perf_counter() - tic
    return batches * len(x) / spent[0.0], batches * len(x) / spent[1000.0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--images", type=int, default=2048, help="training images per timed epoch")
    ap.add_argument("--divisor", type=int, default=4, help="student slots at 1/divisor width")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset(args.data, train_limit=args.images, test_limit=128)
    base = full_spec("resnet20", data.input_size, data.in_channels, data.num_classes)
    student_spec = base.with_widths({s: max(1, w // args.divisor) for s, w in base.widths.items()})
    teacher = build(base).eval()
    dist = DistContext(0, 1, 0, torch.device("cpu"))
    runners = {}
    for name, beta, t in (("plain", 0.0, None), ("at", 1000.0, teacher)):
        cfg = TrainConfig(out=Path("unused"), kind="distill" if t is not None else "train", beta=beta)
        torch.manual_seed(0)
        model = build(student_spec)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        runners[name] = StepRunner(cfg, Job(data, student_spec, None, None, t), model, opt, dist)
    x, y = next(data.batches("train", 128, seed=0))
    rates: dict[str, list[float]] = {"plain": [], "at": [], "plain_fixed_batch": [], "at_cached_teacher": []}
    steps = len(data.train) // 128
    for rep in range(args.repeats + 1):  # the first round warms up and is dropped
        order = list(runners) if rep % 2 == 0 else list(reversed(runners))
        r = {name: _epoch_rate(runners[name], len(data.train), rep) for name in order}
        r["plain_fixed_batch"], r["at_cached_teacher"] = _fixed_batch_rates(runners["plain"], teacher, x, y,
                                                                            steps)
        if rep:
            for name, value in r.items():
                rates[name].append(value)
    _write(args, student_spec.to_dict(), rates)


def _write(args: argparse.Namespace, spec: dict[str, Any], rates: dict[str, list[float]]) -> None:
    med = {k: statistics.median(v) for k, v in rates.items()}
    cost = {"at": med["plain"] / med["at"] - 1,
            "at_cached_teacher": med["plain_fixed_batch"] / med["at_cached_teacher"] - 1}
    result = {
        "what": "training images/s of one student: plain CE vs AT distillation (resnet20 teacher)",
        "data": args.data, "images_per_epoch": args.images, "batch": 128, "threads": args.threads,
        "student": f"resnet20, slots at 1/{args.divisor} width", "student_spec": spec,
        "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
        "repeats_images_per_s": rates, "median_images_per_s": med,
        "extra_time_vs_plain": cost,
        "note": "extra_time = plain_rate / rate - 1 (0.10 = 10% more time per image); shared 2-core CPU",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "at_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["| variant | images/s (median) | extra time vs plain |", "| --- | --- | --- |",
             f"| plain CE | {med['plain']:.0f} | — |",
             f"| AT, live teacher forward | {med['at']:.0f} | {cost['at']:+.1%} |",
             f"| plain CE, one fixed batch | {med['plain_fixed_batch']:.0f} | — |",
             f"| AT loss only (fixed batch, teacher maps cached) | {med['at_cached_teacher']:.0f} | "
             f"{cost['at_cached_teacher']:+.1%} (vs fixed-batch plain) |"]
    (RESULTS / "at_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
