"""``python -m simulations.compress`` on a run directory: files and tables come out right."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from aureon.config import ModelCompressionJob, to_yaml
from aureon.config.registry import REGISTRY
from aureon.exceptions import AureonError, ConfigError
from aureon.launch.run_config import compose_config
from aureon.model_compression.model_job import (
    compress_run,
    compressed_model_name,
    load_run,
    split_server_data,
)
from simulations.compress import main, parse


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, trained_mlp) -> Path:
    """A finished run's folder as RunTracker leaves it: config.yaml and model.pt."""
    folder = tmp_path_factory.mktemp("run")
    config = compose_config(["dataset=digits", "features=none", "model=mlp", "model.hidden=[128]"])
    (folder / "config.yaml").write_text(to_yaml(config))
    torch.save(trained_mlp.model.state_dict(), folder / "model.pt")
    return folder


def test_run_is_read_back_with_its_dataset_model_and_weights(run_dir: Path) -> None:
    run = load_run(run_dir)
    assert run.dataset.name == "digits" and list(run.model.hidden) == [128] and run.seed == 0
    assert run.features.name == "none"
    assert "net.1.weight" in run.state


@pytest.mark.parametrize("method", ["prune", "quantize", "distill"])
def test_each_method_writes_model_and_table(run_dir: Path, method: str) -> None:
    job = ModelCompressionJob(run_dir=str(run_dir), method=method, latency_rounds=2, distill_epochs=3)
    result = compress_run(job)
    assert (run_dir / compressed_model_name(method)).is_file()
    on_disk = json.loads((run_dir / f"compression_{method}.json").read_text())
    assert on_disk["method"] == method
    original, compressed = on_disk["rows"]
    for row in (original, compressed):
        assert 0 < row["nonzero_weights"] <= row["weights"]
        assert 0.2 < row["test_accuracy"] <= 1.0  # above chance (0.1): measured, not a default value
        assert 0 < row["latency_ms_b1"] < row["latency_ms_b64"] * 64
    assert original["test_accuracy"] > 0.5
    assert compressed["file_bytes"] == (run_dir / compressed_model_name(method)).stat().st_size
    assert original["file_bytes"] == (run_dir / "model.pt").stat().st_size
    assert compressed["file_bytes"] < original["file_bytes"]
    assert result["x_smaller_file"] == pytest.approx(original["file_bytes"] / compressed["file_bytes"])
    markdown = (run_dir / f"compression_{method}.md").read_text()
    assert "| original |" in markdown and "| compressed |" in markdown
    if method == "prune":
        assert on_disk["details"]["weight_sparsity"] == pytest.approx(0.7, abs=0.002)
        assert compressed["nonzero_weights"] < 0.35 * original["nonzero_weights"]  # biases stay
    if method == "distill":
        assert compressed["weights"] <= 0.25 * original["weights"]


def test_server_data_halves_the_test_split() -> None:
    import numpy as np

    x, y = np.arange(10).reshape(10, 1), np.arange(10)
    data = split_server_data(x, y)
    assert data.y_public.tolist() == [0, 1, 2, 3, 4] and data.y_eval.tolist() == [5, 6, 7, 8, 9]


def test_command_line_checks_names_types_and_ranges(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="method must be one of"):
        parse([f"run_dir={tmp_path}", "method=zip"])
    with pytest.raises(ConfigError, match="sparsity must be in"):
        parse([f"run_dir={tmp_path}", "method=prune", "sparsity=1.5"])
    with pytest.raises(AureonError, match="bad argument"):
        parse([f"run_dir={tmp_path}", "method=prune", "sparsty=0.5"])
    with pytest.raises(AureonError, match="key=value"):
        parse(["prune"])
    assert main([f"run_dir={tmp_path}", "method=prune"]) == 2  # no config.yaml / model.pt there


@pytest.mark.parametrize("option", sorted(REGISTRY.options("model")))
def test_every_model_option_is_read_back_as_its_own_schema(tmp_path: Path, option: str) -> None:
    overrides = [f"model={option}"] + (["features=scattering"] if option == "feature_linear" else [])
    (tmp_path / "config.yaml").write_text(to_yaml(compose_config(overrides)))
    torch.save({"weight": torch.zeros(1)}, tmp_path / "model.pt")
    assert type(load_run(tmp_path).model) is REGISTRY.options("model")[option].schema


def test_a_saved_model_no_option_builds_is_refused_with_the_options(run_dir: Path, tmp_path: Path) -> None:
    text = (run_dir / "config.yaml").read_text().replace("aureon.models.MLP", "aureon.models.Transformer")
    (tmp_path / "config.yaml").write_text(text)
    (tmp_path / "model.pt").write_bytes((run_dir / "model.pt").read_bytes())
    with pytest.raises(ConfigError) as error:
        load_run(tmp_path)
    assert str(error.value) == (
        "model._target_='aureon.models.Transformer' in the run's config.yaml matches no option of "
        "conf/model/ (['cnn', 'feature_linear', 'logreg', 'mlp'])"
    )
