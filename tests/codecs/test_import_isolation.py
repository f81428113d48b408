"""Importing the codecs stays light: no dataset, feature, training or torch.ao code comes with it.

Run in a fresh interpreter: in the test process other tests have already
imported all of these, so sys.modules here proves nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FORBIDDEN = ("aureon.data", "aureon.features", "aureon.training", "torch.ao")
ROOT = Path(__file__).resolve().parents[2]


def test_importing_codecs_pulls_in_no_data_features_training_or_torch_ao() -> None:
    script = (
        "import json, sys\n"
        "import aureon.codecs\n"
        f"forbidden = {FORBIDDEN!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules\n"
        "    if any(m == f or m.startswith(f + '.') for f in forbidden))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
