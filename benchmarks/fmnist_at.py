"""Does attention transfer help a thin student on Fashion-MNIST? (issue 4, benchmark 2)

Trains (or reuses) a resnet20 teacher, then one thin student — every slot of
resnet20 at 1/4 width — with AT (``distill``, β = 1000) and without
(``distill --beta 0``, i.e. plain CE from the same initialisation and data
order) for the same epochs, for several seeds. Writes every run directory
under ``--runs`` and a table to ``benchmarks/results/fmnist_at.{json,md}``.

CPU is scarce here, so runs use a fixed training subset (``--train-limit``),
optionally a fixed test subset (``--test-limit``) and a few epochs; the
results file records exactly what was run.

Example::

    nice -n 10 python benchmarks/fmnist_at.py --teacher /work/artifacts/fmnist-teacher-resnet20 \\
        --runs /work/artifacts/fmnist-at-runs --epochs 12 --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from perfstudent.distill.runs import load_run
from perfstudent.distill.trainer import TrainConfig, run_training
from perfstudent.students import full_spec

RESULTS = Path(__file__).resolve().parent / "results"


def _train(config: TrainConfig) -> dict[str, Any]:
    out = Path(config.out)
    if (out / "summary.json").is_file() and load_run(out).summary.finished:
        return load_run(out).summary.to_dict()  # reuse a finished run
    config.resume = (out / "config.json").is_file()
    run_training(config)
    return load_run(out).summary.to_dict()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phase", choices=["all", "teacher", "baseline", "at", "report"], default="all",
                    help="run one phase only (phases of different seeds may run in parallel processes)")
    ap.add_argument("--teacher", type=Path, default=Path("/work/artifacts/fmnist-teacher-resnet20"))
    ap.add_argument("--runs", type=Path, default=Path("/work/artifacts/fmnist-at-runs"))
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--teacher-epochs", type=int, default=12)
    ap.add_argument("--train-limit", type=int, default=10_000)
    ap.add_argument("--test-limit", type=int, default=None, help="test images (default: all 10k)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    common = dict(data="fashion-mnist", train_limit=args.train_limit, test_limit=args.test_limit,
                  threads=args.threads, progress=False)
    if args.phase in ("all", "teacher"):
        _train(TrainConfig(out=args.teacher, family="resnet20", epochs=args.teacher_epochs, seed=0,
                           **common))  # type: ignore[arg-type]
    base = full_spec("resnet20", 28, 1, 10)
    thin = base.with_widths({s: max(1, w // 4) for s, w in base.widths.items()})
    args.runs.mkdir(parents=True, exist_ok=True)
    thin.save(args.runs / "thin-spec.json")
    for seed in args.seeds:
        if args.phase in ("all", "baseline"):
            # no AT: `train --spec` — the same computation as `distill --beta 0` (tested), and it
            # needs no teacher, so it can run while the teacher trains
            _train(TrainConfig(out=args.runs / f"thin-beta0-seed{seed}", spec=args.runs / "thin-spec.json",
                               epochs=args.epochs, seed=seed, **common))  # type: ignore[arg-type]
        if args.phase in ("all", "at"):
            _train(TrainConfig(out=args.runs / f"thin-beta1000-seed{seed}", kind="distill",
                               spec=args.runs / "thin-spec.json", teacher=args.teacher, beta=1000.0,
                               epochs=args.epochs, seed=seed, **common))  # type: ignore[arg-type]
    if args.phase in ("all", "report"):
        _report(args, thin.to_dict())


def _report(args: argparse.Namespace, thin: dict[str, Any]) -> None:
    teacher = load_run(args.teacher).summary.to_dict()
    rows = []
    for seed in args.seeds:
        for beta in (0.0, 1000.0):
            out = args.runs / f"thin-beta{int(beta)}-seed{seed}"
            if (out / "summary.json").is_file() and load_run(out).summary.finished:
                s = load_run(out).summary
                rows.append({"seed": seed, "beta": beta, "final_test_acc": s.final_test_acc,
                             "best_test_acc": s.best_test_acc, "run": str(out)})
    _write(args, teacher, thin, rows)


def _write(args: argparse.Namespace, teacher: dict[str, Any], thin: dict[str, Any],
           rows: list[dict[str, Any]]) -> None:
    acc = {(r["seed"], r["beta"]): r["final_test_acc"] for r in rows}
    by_beta = {b: [a for (_, rb), a in acc.items() if rb == b] for b in (0.0, 1000.0)}
    paired = [acc[(s, 1000.0)] - acc[(s, 0.0)] for s in args.seeds if (s, 0.0) in acc and (s, 1000.0) in acc]
    stats = {str(b): {"n": len(v), "mean": statistics.mean(v) if v else None,
                      "std": statistics.stdev(v) if len(v) > 1 else None} for b, v in by_beta.items()}
    result = {
        "what": "resnet20 teacher vs thin resnet20 student (slots at 1/4 width), Fashion-MNIST, "
                "with (beta=1000) and without (beta=0) attention transfer",
        "settings": {"train_limit": args.train_limit, "test_images": args.test_limit or 10_000,
                     "epochs": args.epochs, "teacher_epochs": args.teacher_epochs,
                     "optimizer": "SGD lr 0.1 momentum 0.9 wd 5e-4, cosine, batch 128"},
        "note": "beta=0 runs are `train --spec` (the same computation as `distill --beta 0`, tested); "
                "accuracies are fractions of the fixed test subset",
        "teacher": {"path": str(args.teacher), "final_test_acc": teacher["final_test_acc"],
                    "best_test_acc": teacher["best_test_acc"], "params": teacher["params"]},
        "student_spec": thin,
        "runs": rows,
        "final_test_acc_by_beta": stats,
        "paired_at_minus_no_at": paired,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fmnist_at.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["| student | seed | final test acc | best test acc |", "| --- | --- | --- | --- |"]
    lines += [f"| {'AT β=1000' if r['beta'] else 'no AT (β=0)'} | {r['seed']} | {r['final_test_acc']:.4f} "
              f"| {r['best_test_acc']:.4f} |" for r in rows]
    for b, st in stats.items():
        if st["n"]:
            spread = f" ± {st['std']:.4f}" if st["std"] is not None else ""
            lines.append(f"\nβ={b}: mean final test acc {st['mean']:.4f}{spread} over {st['n']} seeds")
    if paired:
        lines.append(f"\npaired AT − no-AT per seed: {', '.join(f'{d:+.4f}' for d in paired)}")
    lines.append(f"\nteacher resnet20: final {teacher['final_test_acc']:.4f}, "
                 f"best {teacher['best_test_acc']:.4f}")
    (RESULTS / "fmnist_at.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
