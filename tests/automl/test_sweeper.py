"""AUREON's Hydra sweeper on Optuna 5 (hydra_plugins/aureon_optuna_sweeper)."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from aureon.config import register_configs
from aureon.config.registry import REGISTRY
from hydra_plugins.aureon_optuna_sweeper._impl import parse_arguments
from hydra_plugins.aureon_optuna_sweeper._search_space import SearchSpaceError, build_search_space
from tests.test_registry import NEEDS

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf"


def space(*arguments: str):
    return build_search_space(parse_arguments(OverridesParser.create(), arguments))


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ("train.lr=interval(0.1,4.0)", FloatDistribution(0.1, 4.0)),
        ("train.lr=tag(log, interval(0.001, 1))", FloatDistribution(0.001, 1.0, log=True)),
        ("train.local_epochs=int(interval(1,5))", IntDistribution(1, 5)),
        ("train.batch_size=tag(log, int(interval(16,1024)))", IntDistribution(16, 1024, log=True)),
        ("train.batch_size=choice(256,512,1024)", CategoricalDistribution([256, 512, 1024])),
        ("strategy=fedavg,fedprox", CategoricalDistribution(["fedavg", "fedprox"])),
        ("train.local_epochs=range(1,5)", IntDistribution(1, 4)),
        ("train.local_epochs=range(1,8,3)", IntDistribution(1, 7, step=3)),
        ("train.lr_decay=range(0.5,1.0,0.25)", FloatDistribution(0.5, 0.75, step=0.25)),
    ],
)
def test_the_override_grammar_maps_to_optunas_distributions(argument: str, expected: object) -> None:
    (parameter,) = space(argument).parameters
    assert parameter.key == argument.split("=")[0]
    assert parameter.distribution == expected


def test_plain_overrides_stay_fixed_and_each_trial_gets_its_own_values() -> None:
    searched = space("num_rounds=1", "train.lr=interval(0.1,1)", "strategy=choice(fedavg,fedprox)")
    assert searched.fixed == ("num_rounds=1",)
    assert searched.overrides({"train.lr": 0.25, "strategy": "fedprox"}) == [
        "num_rounds=1",
        "train.lr=0.25",
        "strategy=fedprox",
    ]


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("train.lr=interval(1.0,1.0)", r"train\.lr=interval\(1\.0,1\.0\): expected an interval whose start is below"),
        ("train.lr=interval(2,1)", r"train\.lr=interval\(2,1\): expected an interval whose start is below its end"),
        ("train.lr=tag(log, interval(0,1))", r"train\.lr=.*expected a log-scaled interval above 0, got start 0"),
        ("train.lr=tag(cube, interval(0.1,1))", r"train\.lr=.*expected tags among \['log'\], got \['cube'\]"),
        ("train.local_epochs=range(5,1)", r"train\.local_epochs=range\(5,1\): expected start < stop"),
        ("train.lr=uniform(0.1,1)", r"'train\.lr=uniform\(0\.1,1\)': expected key=interval\(a,b\)"),
        ("train.batch_size=choice(32,32)", r"train\.batch_size=choice\(32,32\): expected distinct choices"),
    ],
)
def test_a_search_space_that_cannot_be_sampled_is_refused_naming_the_parameter(argument: str, message: str) -> None:
    with pytest.raises(SearchSpaceError, match=message):
        space(argument)


def _sweep(tmp_path: Path, app: Path | None, *arguments: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, *([str(app)] if app else ["-m", "simulations.run"]), "-m", "hydra/sweeper=optuna"]
    return subprocess.run(
        [*command, *arguments, f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=REPO,
        env={**__import__("os").environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.integration
def test_a_three_trial_sweep_of_simulations_run_passes_each_trials_params_and_reports_the_best(
    tmp_path: Path,
) -> None:
    result = _sweep(
        tmp_path,
        None,
        "dataset=digits",
        "strategy=centralized",
        "num_rounds=1",
        "train.lr=tag(log, interval(0.05, 1.0))",
        "train.batch_size=choice(32,64)",
        "hydra.sweeper.n_trials=3",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "sweep"
    trials = list(csv.DictReader((sweep / "trials.csv").open()))
    assert [t["state"] for t in trials] == ["COMPLETE"] * 3
    for number, trial in enumerate(trials):
        (job_dir,) = sweep.glob(f"{number}_*")
        job = yaml.safe_load((job_dir / "config.yaml").read_text())  # the config the job ran with
        assert math.isclose(job["train"]["lr"], float(trial["train.lr"]))
        assert job["train"]["batch_size"] == int(trial["train.batch_size"])
        results = yaml.safe_load((job_dir / "results.json").read_text())
        assert math.isclose(results["final"]["test_accuracy"], float(trial["value"]))  # the job's return value
    best = max(trials, key=lambda t: float(t["value"]))
    reported = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert reported["best_trial"] == int(best["number"])
    assert math.isclose(reported["best_value"], float(best["value"]))
    assert f"optuna sweep: best value {float(best['value']):.6g}" in result.stdout
    summary = list(csv.DictReader((sweep / "summary.csv").open()))  # the grid sweep's summary, for Optuna too
    assert len(summary) == 3


APP = """
    import math
    import sys

    import hydra
    from hydra.core.hydra_config import HydraConfig

    @hydra.main(version_base=None, config_path=None, config_name=None)
    def main(cfg):
        job = HydraConfig.get().job.num
        if job == 0:
            raise ValueError("a bad combination")
        if job == 1:
            raise SystemExit(2)
        if job == 2:
            return math.nan
        return -(cfg.x - 0.3) ** 2

    if __name__ == "__main__":
        main()
"""


def test_failed_jobs_are_failed_trials_with_their_reason_and_the_sweep_goes_on(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(APP))
    result = _sweep(
        tmp_path,
        app,
        "+x=interval(0,1)",
        "hydra.sweeper.n_trials=6",
        "hydra/sweeper/sampler=random",
        "hydra.sweeper.sampler.seed=3",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trials = list(csv.DictReader((tmp_path / "sweep" / "trials.csv").open()))
    assert [t["state"] for t in trials] == ["FAIL", "FAIL", "FAIL", "COMPLETE", "COMPLETE", "COMPLETE"]
    assert "ValueError: a bad combination" in trials[0]["fail_reason"]
    assert "exited with code 2" in trials[1]["fail_reason"]
    assert "nan" in trials[2]["fail_reason"]
    best = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    values = [float(t["value"]) for t in trials[3:]]
    assert best["best_value"] == max(values) and best["best_trial"] in (3, 4, 5)


def test_storage_and_direction_are_checked_before_any_trial(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(APP))
    result = _sweep(tmp_path, app, "+x=interval(0,1)", "hydra.sweeper.direction=up")
    assert result.returncode != 0
    assert "hydra.sweeper.direction must be one of ['maximize', 'minimize'], got 'up'" in result.stderr
    journal = tmp_path / "study.log"
    result = _sweep(tmp_path, app, "+x=interval(0,1)", "hydra.sweeper.n_trials=4", f"hydra.sweeper.storage={journal}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert journal.stat().st_size > 0  # the study lives in Optuna's journal file


OPTIONS = [(group, name) for group in REGISTRY.groups() for name in REGISTRY.options(group)]


@pytest.mark.parametrize(("group", "name"), OPTIONS)
def test_the_sweeper_composes_with_every_config_group(group: str, name: str) -> None:
    """Compose only: the group's options as a categorical, each trial's choice with the sweeper selected."""
    options = sorted(REGISTRY.options(group))
    (parameter,) = space(f"{group}=choice({','.join(options)})").parameters
    assert parameter.distribution == CategoricalDistribution(options)
    overrides = ["hydra/sweeper=optuna", *NEEDS.get((group, name), []), parameter.override(name)]
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
    assert cfg.hydra.sweeper._target_ == "hydra_plugins.aureon_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert cfg.hydra.sweeper.sampler._target_ == "optuna.samplers.TPESampler"
    assert OmegaConf.get_type(cfg, group) is REGISTRY.options(group)[name].schema
