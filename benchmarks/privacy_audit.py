"""The one-run privacy audit on full MNIST: reported epsilon beside the empirical lower bound.

For two recipes, the preset conf/experiment/mnist_dp.yaml (5 IID clients, a linear
model on scattering features) and the small CNN on pixels, one federated run per
privacy setting (sample-level DP-SGD at reported epsilon 1, 2 and 8, delta 1e-5,
and no DP), each with 1,000 mislabelled canaries of which about half are
included in the clients' data; the final model's loss on each canary gives the
auditor's 100 "in" and 100 "out" guesses (fixed before the run) and the
empirical epsilon lower bound at 95% confidence (Steinke, Nasr and Jagielski 2023).

    python benchmarks/privacy_audit.py [--mnist-path PATH] [--quick] [--rows "recipe/privacy" ...]
                                       [--override KEY=VALUE ...]

``--quick``: 2 rounds and only the preset's rows at epsilon 2 and 8 and without DP.
Targets: every empirical bound <= its reported epsilon; the no-DP row's bound
clearly above the epsilon-8 row's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import PRESET, add_mnist_argument, fmt, mnist_overrides  # noqa: E402
from benchmarks._report import machine, markdown_table, write  # noqa: E402

NAME = "privacy_audit"
CANARIES = 1000
QUICK_ROUNDS = 2
CLEARLY_ABOVE = 0.5  # "clearly above": the no-DP bound exceeds the epsilon-8 bound by at least this
# As benchmarks/fl_mnist.py: the preset's rate is sized for clipped gradients; without DP
# the linear model takes plain SGD's. The CNN recipe is fl_mnist's CNN on pixels.
NO_DP_LR = 0.1
CNN_ON_PIXELS = ["features=none", "model=cnn", "train.local_epochs=3", "train.batch_size=1024", "train.lr=4.0"]
CNN_NO_DP = ["train.lr=0.1", "train.momentum=0.9", "train.batch_size=128"]
RECIPES: dict[str, list[str]] = {"mnist_dp preset": [], "small CNN on pixels": CNN_ON_PIXELS}
PRIVACY: dict[str, list[str]] = {
    "epsilon 1": ["privacy.target_epsilon=1"],
    "epsilon 2": ["privacy.target_epsilon=2"],
    "epsilon 8": ["privacy.target_epsilon=8"],
    "no DP": ["privacy=none"],
}
QUICK_ROWS = [("mnist_dp preset", "epsilon 2"), ("mnist_dp preset", "epsilon 8"), ("mnist_dp preset", "no DP")]


def row_overrides(recipe: str, privacy: str) -> list[str]:
    """The recipe, the privacy setting, and the no-DP learning rate where DP is off."""
    no_dp = [] if privacy != "no DP" else (CNN_NO_DP if recipe != "mnist_dp preset" else [f"train.lr={NO_DP_LR}"])
    return [*RECIPES[recipe], *PRIVACY[privacy], *no_dp]


def run_audited(overrides: list[str]) -> dict[str, Any]:
    """One federated run with canaries and its audit, in a throwaway run directory."""
    from aureon.launch.run_config import compose_config
    from aureon.launch.simulation import run_experiment
    from aureon.privacy.canary_audit import audit_run, record_canaries, run_canaries

    config = compose_config(overrides)
    with tempfile.TemporaryDirectory(prefix="aureon-audit-") as folder:
        run_dir = Path(folder)
        started = time.monotonic()
        plan = run_canaries(config)
        record_canaries(run_dir, config, plan)
        results = run_experiment(config, run_dir)
        train_seconds = time.monotonic() - started
        results = audit_run(config, run_dir, plan, results)
        results["wall_seconds"] = time.monotonic() - started
        results["train_seconds"] = train_seconds
    return results


def figures(recipe: str, privacy: str, overrides: list[str], results: dict[str, Any]) -> dict[str, Any]:
    block = results["audit"]
    return {
        "recipe": recipe,
        "privacy": privacy,
        "overrides": [o for o in overrides if not o.startswith("dataset.path=")],
        "guarantee": block["guarantee"],
        "reported_epsilon": block["reported_epsilon"],
        "delta": block["delta"],
        "epsilon_lower_bound": block["epsilon_lower_bound"],
        "canaries": block["canaries"],
        "included": block["included"],
        "guesses": block["guesses"],
        "correct": block["correct"],
        "confidence": block["confidence"],
        "test_accuracy": results["final"]["test_accuracy"],
        "rounds": results["rounds_completed"],
        "wall_seconds": results["wall_seconds"],
    }


def verdicts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Every bound under its reported epsilon; per recipe, the no-DP bound against the epsilon-8 one."""
    under = [r["epsilon_lower_bound"] <= r["reported_epsilon"] for r in rows if r["reported_epsilon"] is not None]
    gaps = {}
    for recipe in RECIPES:
        by = {r["privacy"]: r for r in rows if r["recipe"] == recipe}
        if "no DP" in by and "epsilon 8" in by:
            gaps[recipe] = by["no DP"]["epsilon_lower_bound"] - by["epsilon 8"]["epsilon_lower_bound"]
    return {"all_bounds_under_reported": all(under) if under else None, "no_dp_minus_epsilon_8": gaps}


def report(rows: list[dict[str, Any]], verdict: dict[str, Any], base: list[str], quick: bool) -> str:
    table = markdown_table(
        [
            "recipe",
            "privacy",
            "reported epsilon (delta)",
            "empirical lower bound (95%)",
            "correct / guesses",
            "canaries in",
            "test acc",
            "wall s",
        ],
        [
            [
                r["recipe"],
                r["privacy"],
                "-" if r["reported_epsilon"] is None else f"{r['reported_epsilon']:.3f} ({r['delta']:g})",
                fmt(r["epsilon_lower_bound"], ".3f"),
                f"{r['correct']} / {r['guesses']}",
                f"{r['included']} of {r['canaries']}",
                fmt(r["test_accuracy"]),
                fmt(r["wall_seconds"], ".0f"),
            ]
            for r in rows
        ],
    )
    under = verdict["all_bounds_under_reported"]
    gaps = (
        ", ".join(
            f"{name}: {gap:+.3f} ({'met' if gap >= CLEARLY_ABOVE else 'not met'})"
            for name, gap in verdict["no_dp_minus_epsilon_8"].items()
        )
        or "not measured"
    )
    return (
        "# Empirical privacy audit on MNIST (one run, 1,000 canaries)\n\n"
        f"Config: `{' '.join(base)}` plus each row's overrides"
        + (f"; **quick run: {QUICK_ROUNDS} rounds, a subset of the rows**" if quick else "")
        + ". Reported epsilon: sample-level DP-SGD on each client's data, the max over clients after "
        "the last round. The bound: Steinke, Nasr and Jagielski (2023), at the run's delta (1e-5 "
        "without DP), from the final model's loss on each canary's wrong label, 100 \"in\" and 100 "
        '"out" guesses fixed before the run. 1,000 canaries can show at most about 5.8 '
        "(every guess right, 1,000 guesses) and 4.2 with 200 guesses, whatever the run leaks.\n\n"
        f"Every empirical bound <= its reported epsilon: **{under}**. "
        f"No-DP bound minus epsilon-8 bound (target >= {CLEARLY_ABOVE}): **{gaps}**.\n\n" + table
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_mnist_argument(parser)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROUNDS} rounds, three rows")
    every = [f"{recipe}/{privacy}" for recipe in RECIPES for privacy in PRIVACY]
    parser.add_argument("--rows", nargs="+", choices=every, help="only these rows ('recipe/privacy')")
    parser.add_argument("--override", nargs="*", default=[], help="extra Hydra overrides")
    args = parser.parse_args()
    base = [PRESET, *mnist_overrides(args.mnist_path), f"audit.canaries={CANARIES}", *args.override]
    if args.quick:
        base.append(f"num_rounds={QUICK_ROUNDS}")
    plan = QUICK_ROWS if args.quick else [(recipe, privacy) for recipe in RECIPES for privacy in PRIVACY]
    if args.rows:
        plan = [(row.split("/")[0], row.split("/")[1]) for row in args.rows]
    rows = []
    for recipe, privacy in plan:
        overrides = [*base, *row_overrides(recipe, privacy)]
        print(f"--- {recipe}, {privacy}", flush=True)
        rows.append(figures(recipe, privacy, overrides, run_audited(overrides)))
        print(
            f"    reported {fmt(rows[-1]['reported_epsilon'], '.3f')}  bound {rows[-1]['epsilon_lower_bound']:.3f}"
            f"  ({rows[-1]['correct']}/{rows[-1]['guesses']})  acc {rows[-1]['test_accuracy']:.4f}"
            f"  {rows[-1]['wall_seconds']:.0f} s",
            flush=True,
        )
    shown = [o if not o.startswith("dataset.path=") else "dataset.path=<mnist>" for o in base]
    verdict = verdicts(rows)
    data = {"config": shown, "quick": args.quick, "machine": machine(), "verdict": verdict, "rows": rows}
    json_path, md_path = write(NAME, data, report(rows, verdict, shown, args.quick))
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
