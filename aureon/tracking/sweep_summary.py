"""A Hydra callback that tabulates every run of a sweep (CSV and Markdown)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

COLUMNS = [
    "run",
    "overrides",
    "final_accuracy",
    "epsilon_max",
    "rounds",
    "bytes_up_total",
    "bytes_down_total",
    "seconds",
]


def summarize_sweep(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per run directory under ``sweep_dir`` that holds a results.json."""
    rows = []
    for results_path in sorted(sweep_dir.glob("*/results.json")):
        results = json.loads(results_path.read_text())
        final = results.get("final") or {}
        overrides_file = results_path.parent / ".hydra" / "overrides.yaml"
        overrides = (
            " ".join(
                line.removeprefix("- ").strip() for line in overrides_file.read_text().splitlines() if line.strip()
            )
            if overrides_file.is_file()
            else ""
        )
        rows.append(
            {
                "run": results_path.parent.name,
                "overrides": overrides,
                "final_accuracy": final.get("test_accuracy"),
                "epsilon_max": final.get("epsilon_max"),
                "rounds": results.get("rounds_completed"),
                "bytes_up_total": final.get("bytes_up_total"),
                "bytes_down_total": final.get("bytes_down_total"),
                "seconds": round(float(results.get("total_seconds", 0.0)), 1),
            }
        )
    return rows


def write_summary(sweep_dir: Path, rows: list[dict[str, Any]]) -> None:
    """summary.csv and summary.md in the sweep directory."""
    with (sweep_dir / "summary.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4f}"
        return "" if value is None else str(value)

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(row[c]) for c in COLUMNS) + " |" for row in rows]
    (sweep_dir / "summary.md").write_text("\n".join(lines) + "\n")


class SweepSummaryCallback(Callback):
    """Writes summary.csv / summary.md when a ``-m`` sweep ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = summarize_sweep(sweep_dir)
        write_summary(sweep_dir, rows)
        print(f"sweep summary: {sweep_dir / 'summary.md'} ({len(rows)} runs)")
