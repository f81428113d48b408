"""Global magnitude pruning: permanent zeros, a file that really shrinks, accuracy reported."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from aureon.config import TrainConfig
from aureon.model_compression.measure import accuracy
from aureon.model_compression.pruning import prune_global_magnitude, prunable_weights, weight_sparsity
from aureon.model_compression.sparse_io import load_sparse, pack_sparse, save_sparse, unpack_sparse


def test_pruning_is_permanent_global_and_hits_the_sparsity(trained_mlp) -> None:
    model = copy.deepcopy(trained_mlp.model)
    prune_global_magnitude(model, sparsity=0.7)
    assert weight_sparsity(model) == pytest.approx(0.7, abs=0.002)
    names = dict(model.named_parameters())
    assert not any(n.endswith("_orig") for n in names)  # no reparametrization left
    assert not any(n.endswith("_mask") for n, _ in model.named_buffers())
    # global ranking: layers are pruned unevenly, the smallest magnitudes overall go first
    per_layer = [float((getattr(m, "weight") == 0).float().mean()) for m, _ in prunable_weights(model)]
    assert max(per_layer) - min(per_layer) > 0.01
    kept = torch.cat([m.weight.abs().flatten() for m, _ in prunable_weights(model)])
    dropped = torch.cat(
        [m.weight.abs().flatten() for m, _ in prunable_weights(trained_mlp.model)]
    )[kept == 0]
    assert dropped.max() <= kept[kept > 0].min()


def test_pruned_file_is_smaller_and_loads_back_exactly(trained_mlp, tmp_path: Path) -> None:
    model = copy.deepcopy(trained_mlp.model)
    prune_global_magnitude(model, sparsity=0.7)
    dense = tmp_path / "dense.pt"
    torch.save(trained_mlp.model.state_dict(), dense)
    size = save_sparse(model.state_dict(), tmp_path / "sparse.pt")
    assert size < 0.5 * dense.stat().st_size
    restored = load_sparse(tmp_path / "sparse.pt")
    for name, tensor in model.state_dict().items():
        assert torch.equal(restored[name], tensor)
    before = accuracy(trained_mlp.model, trained_mlp.x_test, trained_mlp.y_test)
    after = accuracy(model, trained_mlp.x_test, trained_mlp.y_test)
    assert 0.0 <= after <= 1.0 and before > 0.8  # reported, and the model was worth pruning
    assert after > 0.5


def test_fine_tuning_keeps_the_pruned_weights_at_zero(trained_mlp) -> None:
    model = copy.deepcopy(trained_mlp.model)
    prune_global_magnitude(
        model, sparsity=0.8, x=trained_mlp.x_test, y=trained_mlp.y_test,
        fine_tune=TrainConfig(local_epochs=1, batch_size=32, lr=0.05, momentum=0.9),
    )
    assert weight_sparsity(model) == pytest.approx(0.8, abs=0.002)


def test_dense_tensors_stay_dense_and_all_dtypes_round_trip() -> None:
    state = {"bias": torch.randn(10), "steps": torch.tensor(3), "w": torch.zeros(4, 100)}
    state["w"][0, :5] = 1.0
    packed = pack_sparse(state)
    assert "dense" in packed["tensors"]["bias"] and "mask" in packed["tensors"]["w"]
    restored = unpack_sparse(packed)
    for name, tensor in state.items():
        assert torch.equal(restored[name], tensor)


@pytest.mark.parametrize("sparsity", [-0.1, 1.0, float("nan")])
def test_sparsity_out_of_range_is_refused(trained_mlp, sparsity: float) -> None:
    with pytest.raises(ValueError, match="sparsity"):
        prune_global_magnitude(copy.deepcopy(trained_mlp.model), sparsity=sparsity)
