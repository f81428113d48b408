"""PNG plot of test accuracy and spent epsilon against rounds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from aureon.tracking.records import RoundRecord  # noqa: E402


def plot_rounds(rounds: Sequence[RoundRecord], path: Path, *, initial: dict[str, float] | None = None) -> None:
    """Accuracy (left axis) and max client epsilon (right axis) per round."""
    xs = [r.round for r in rounds]
    accs = [r.test_accuracy for r in rounds]
    if initial is not None:
        xs, accs = [0, *xs], [initial["test_accuracy"], *accs]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    ax.plot(xs, accs, marker="o", color="tab:blue", label="test accuracy")
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy", color="tab:blue")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    eps = [(r.round, r.epsilon_max) for r in rounds if r.epsilon_max is not None]
    if eps:
        ax2 = ax.twinx()
        ax2.plot([e[0] for e in eps], [e[1] for e in eps], marker="s", color="tab:red")
        ax2.set_ylabel("epsilon spent (max over clients)", color="tab:red")
        ax2.set_ylim(bottom=0)
    ax.set_title("AUREON run")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
