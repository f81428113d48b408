"""Writing a benchmark's figures: one JSON file and one Markdown table per script."""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """What the figures were measured on (ratios travel between machines, seconds do not)."""
    import os

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write(name: str, data: dict[str, Any], markdown: str, *, redact: dict[str, str] | None = None) -> tuple[Path, Path]:
    """benchmarks/results/<name>.json and .md; ``redact`` maps local paths to placeholders."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    json_path, md_path = RESULTS / f"{name}.json", RESULTS / f"{name}.md"
    text = json.dumps(data, indent=2) + "\n"
    for secret, placeholder in (redact or {}).items():
        if secret:
            text = text.replace(secret, placeholder)
            markdown = markdown.replace(secret, placeholder)
    json_path.write_text(text)
    md_path.write_text(markdown)
    return json_path, md_path
