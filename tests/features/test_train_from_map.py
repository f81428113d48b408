"""Training straight from the memory-mapped feature file: the same numbers, no copy of the partition."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from aureon.config import DpSgdConfig, TrainConfig
from aureon.features.cache import FeatureStore, take_rows
from aureon.models import MLP
from aureon.privacy import plan_dp
from aureon.privacy.private_training import PrivateTraining
from aureon.training import evaluate_model, train_model
from aureon.training.loops import ArrayRows

CONFIG = TrainConfig(local_epochs=2, batch_size=16, lr=0.2, momentum=0.5, weight_decay=0.0)


def _features(tmp_path: Path, rows: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(in-memory x, the same x mapped from a cache entry, y): 8 features, two classes."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=rows).astype(np.int64)
    x = (rng.normal(size=(rows, 8)) + 1.5 * (2.0 * y[:, None] - 1.0)).astype(np.float32)
    store = FeatureStore(tmp_path)
    store.write("x", shape=x.shape, dtype=x.dtype, chunks=[x[:150], x[150:]])
    mapped = store.open("x")
    assert mapped is not None and not mapped.flags.writeable
    return x, mapped, y


def _model() -> nn.Module:
    torch.manual_seed(0)
    return MLP(input_shape=(8,), num_classes=2, hidden=(8,))


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_consecutive_rows_of_a_mapped_entry_are_a_view_not_a_copy(tmp_path: Path) -> None:
    x, mapped, _ = _features(tmp_path)
    part = take_rows(mapped, np.arange(100, 200))
    assert np.shares_memory(part, mapped) and not part.flags.writeable
    np.testing.assert_array_equal(part, x[100:200])
    scattered = take_rows(mapped, np.array([5, 3, 9]))
    assert not np.shares_memory(scattered, mapped) and scattered.flags.writeable


@pytest.mark.parametrize("private", [False, True])
def test_training_on_a_mapped_partition_gives_the_same_model_as_on_a_copy(tmp_path: Path, private: bool) -> None:
    x, mapped, y = _features(tmp_path)
    rows = np.arange(50, 350)
    results = []
    for features in (x[rows].copy(), take_rows(mapped, rows)):
        model = _model()
        dp = None
        if private:  # reproducible noise (a test-only opt-in): both runs draw the same batches and noise
            plan = plan_dp(DpSgdConfig(), num_examples=len(rows), batch_size=16, local_epochs=2, num_rounds=1)
            dp = PrivateTraining(plan=plan, noise_seed=11)
        result = train_model(model, features, y[rows], config=CONFIG, seed=3, private=dp)
        results.append((model, result))
    (copied, on_copy), (mapped_model, on_map) = results
    assert _same_weights(copied, mapped_model)
    assert on_copy.steps == on_map.steps and on_copy.mean_loss == on_map.mean_loss
    assert evaluate_model(mapped_model, x, y).accuracy > 0.9


def _resident_kib(path: Path) -> int:
    resident, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if "-" in line.split(" ", 1)[0]:
            inside = line.endswith(str(path))
        elif inside and line.startswith("Rss:"):
            resident += int(line.split()[1])
    return resident


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads /proc/self/smaps (Linux)")
def test_training_and_evaluation_leave_no_page_of_the_file_counted_in_this_process(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(512, 16, 16)).astype(np.float32)  # 512 KiB
    y = rng.integers(0, 2, size=512).astype(np.int64)
    store = FeatureStore(tmp_path)
    mapped = store.write("x", shape=x.shape, dtype=x.dtype, chunks=[x])
    model = MLP(input_shape=(16, 16), num_classes=2, hidden=(4,))
    train_model(model, take_rows(mapped, np.arange(512)), y, config=CONFIG, seed=0)
    assert _resident_kib(store.data_path("x")) == 0
    evaluate_model(model, mapped, y, batch_size=100)
    assert _resident_kib(store.data_path("x")) == 0


def test_array_rows_fetches_a_batch_in_the_order_asked_and_an_empty_one() -> None:
    x = np.arange(24, dtype=np.float32).reshape(6, 2, 2)
    y = np.arange(6, dtype=np.int64)
    rows = ArrayRows(x, y)
    batch = rows.__getitems__([4, 1, 4])
    assert [int(label) for _, label in batch] == [4, 1, 4]
    assert torch.equal(batch[1][0], torch.from_numpy(x[1]))
    assert rows.__getitems__([]) == [] and len(rows) == 6
    with pytest.raises(ValueError, match="as many rows, got 6 and 5"):
        ArrayRows(x, y[:5])
