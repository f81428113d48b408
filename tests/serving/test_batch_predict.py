"""Batch prediction: the same answers as in process, and a file larger than the memory allowed finishes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from aureon.config import DigitsConfig
from aureon.data import load_dataset
from aureon.serving.loading import load_served_model

REPO = Path(__file__).resolve().parents[2]


def _predict(*args: str, limit_mb: int | None = None) -> subprocess.CompletedProcess[str]:
    """``simulations.predict`` in a child; with ``limit_mb``, its address space is capped at what it
    uses once loaded plus ``limit_mb`` (RLIMIT_AS), set just before it reads the input."""
    code = (
        "import resource, sys, simulations.predict as p, aureon.serving.batch as b\n"
        "import aureon.serving.loading, torch, pandas\n"
        f"limit = {limit_mb!r}\n"
        "if limit is not None:\n"
        "    original = b.open_source\n"
        "    def capped(*a, **k):\n"
        "        size = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()\n"
        "        resource.setrlimit(resource.RLIMIT_AS, (size + limit * 2**20, resource.RLIM_INFINITY))\n"
        "        return original(*a, **k)\n"
        "    b.open_source = capped\n"
        "sys.exit(p.main(sys.argv[1:]))\n"
    )
    return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_npy_csv_and_idx_inputs_give_the_in_process_predictions(tmp_path: Path, cnn_run: Path) -> None:
    rows = load_dataset(DigitsConfig(), 0).x_test[:300]
    model = load_served_model(cnn_run)
    expected = model.logits(rows).argmax(axis=1)
    np.save(tmp_path / "rows.npy", rows)
    np.savetxt(tmp_path / "rows.csv", rows.reshape(len(rows), -1), delimiter=",", fmt="%.9g")
    base = [f"run_dir={cnn_run}", "serving.predict_batch=64", "progress=false"]
    done = _predict(*base, f"input={tmp_path / 'rows.npy'}", f"output={tmp_path / 'out.npy'}")
    assert done.returncode == 0, done.stderr[-2000:]
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
    done = _predict(*base, f"input={tmp_path / 'rows.csv'}", f"output={tmp_path / 'out.csv'}")
    assert done.returncode == 0, done.stderr[-2000:]
    written = np.loadtxt(tmp_path / "out.csv", delimiter=",", skiprows=1)
    np.testing.assert_array_equal(written[:, 0].astype(int), expected)

    from aureon.data.idx import write_idx

    pixels = np.random.default_rng(0).integers(0, 256, size=(100, 8, 8), dtype=np.uint8)
    (tmp_path / "idx").mkdir()
    write_idx(tmp_path / "idx" / "t10k-images-idx3-ubyte.gz", pixels)
    done = _predict(*base, f"input={tmp_path / 'idx'}", f"output={tmp_path / 'idx.npy'}")
    assert done.returncode == 0, done.stderr[-2000:]
    images = ((pixels[:, None] / 255.0 - 0.1307) / 0.3081).astype(np.float32)
    np.testing.assert_array_equal(np.load(tmp_path / "idx.npy"), model.logits(images).argmax(axis=1))


def test_a_file_larger_than_the_memory_allowed_is_predicted(tmp_path: Path, cnn_run: Path) -> None:
    rows = load_dataset(DigitsConfig(), 0).x_test
    count = 400_000  # 400,000 x 64 float32 = 98 MiB of input, under a 64 MiB allowance
    big = np.lib.format.open_memmap(tmp_path / "big.npy", mode="w+", dtype=np.float32, shape=(count, 1, 8, 8))
    for start in range(0, count, len(rows)):
        big[start : start + len(rows)] = rows[: count - start]
    big.flush()
    del big
    args = [f"run_dir={cnn_run}", f"input={tmp_path / 'big.npy'}", f"output={tmp_path / 'out.npy'}", "progress=false"]
    refused = _predict(*args, "serving.predict_batch=2000000", limit_mb=64)
    assert refused.returncode != 0  # the cap is real: one batch of the whole file does not fit
    done = _predict(*args, "serving.predict_batch=512", limit_mb=64)
    assert done.returncode == 0, done.stderr[-2000:]
    out = np.load(tmp_path / "out.npy", mmap_mode="r")
    assert out.shape == (count,)
    expected = load_served_model(cnn_run).logits(rows[:100]).argmax(axis=1)
    np.testing.assert_array_equal(out[:100], expected)
    np.testing.assert_array_equal(out[len(rows) : len(rows) + 100], expected)


def test_loading_a_served_model_leaves_the_training_stack_unloaded(cnn_run: Path) -> None:
    # serving and predict start in seconds: Opacus, Flower and Ray are not theirs to load
    code = (
        "import sys\n"
        "from aureon.serving.loading import load_served_model\n"
        f"load_served_model({str(cnn_run)!r})\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'opacus', 'flwr', 'ray', 'optuna'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
