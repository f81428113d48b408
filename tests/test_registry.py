"""The config registry's contract: every option has its YAML, composes, validates and builds.

A new dataset, partition, strategy or feature transform is one ``@register``-ed
config class, one builder and one ``conf/<group>/<name>.yaml``; this suite runs
over whatever is registered, so the new option is checked without new tests.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pytest
import yaml
from flwr.serverapp.strategy import Strategy

from aureon.config import CentralizedConfig, DatasetConfig, DigitsConfig, FeaturesConfig
from aureon.config.registry import GROUPS, REGISTRY, Registry
from aureon.data import Dataset, load_dataset, partition_indices
from aureon.exceptions import ConfigError
from aureon.features import prepare_dataset
from aureon.launch.run_config import compose_config
from aureon.strategies import build_strategy

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
PRESETS = {"experiment"}  # conf/experiment/ holds `@package _global_` presets, not a group's options
BUILT = ("dataset", "partition", "strategy", "features")

# Options that compose only together with another choice.
NEEDS = {
    ("strategy", "bulyan"): ["num_clients=7"],  # Bulyan tolerates f Byzantine clients only with >= 4f + 3
    ("model", "feature_linear"): ["features=scattering"],  # it needs feature maps
    ("features", "none"): ["model=cnn"],  # the default model reads feature maps, not pixels
    **{("features", name): ["model=logreg"] for name in ("standardize", "minmax", "impute", "onehot")},
    **{("features", name): ["model=logreg"] for name in ("quantile_bins", "generate")},  # tables: columns
}

OPTIONS = [(group, name) for group in REGISTRY.groups() for name in REGISTRY.options(group)]


def _yaml_names(group: str) -> set[str]:
    return {path.stem for path in (CONF / group).glob("*.yaml")}


def test_every_conf_folder_is_a_registered_group() -> None:
    folders = {path.name for path in CONF.iterdir() if path.is_dir()} - PRESETS
    assert folders == set(REGISTRY.groups())


@pytest.mark.parametrize("group", REGISTRY.groups())
def test_every_option_has_a_yaml_of_its_name_and_every_yaml_an_option(group: str) -> None:
    assert _yaml_names(group) == set(REGISTRY.options(group))


@pytest.mark.parametrize(("group", "name"), OPTIONS)
def test_each_yaml_extends_the_schema_of_its_own_option(group: str, name: str) -> None:
    text = yaml.safe_load((CONF / group / f"{name}.yaml").read_text())
    assert text["defaults"][0] == f"schema_{name}"
    schema_fields = {f.name for f in fields(REGISTRY.options(group)[name].schema)}
    assert set(text) - {"defaults"} <= schema_fields


@pytest.mark.parametrize("group", BUILT)
def test_every_option_of_a_built_group_has_a_builder(group: str) -> None:
    for name, option in REGISTRY.options(group).items():
        builds_nothing = group == "strategy" and not option.schema().federated  # the centralized baseline
        assert (option.builder is None) == builds_nothing, name


def _compose(group: str, name: str, request: pytest.FixtureRequest, tmp_path: Path):
    overrides = [f"{group}={name}", *NEEDS.get((group, name), [])]
    if group in ("partition", "strategy", "features"):
        overrides.append("dataset=digits")  # small: builds in well under a second
    if (group, name) == ("dataset", "mnist"):
        overrides.append(f"dataset.path={request.getfixturevalue('tiny_mnist_dir')}")
    if (group, name) == ("dataset", "table"):
        rows = "".join(f"{i},{i * 0.5},{i % 2}\n" for i in range(40))
        (tmp_path / "table.csv").write_text("a,b,label\n" + rows)
        overrides += [f"dataset.path={tmp_path / 'table.csv'}", "dataset.target=label"]
    config = compose_config(overrides)
    if hasattr(config.features, "cache_dir"):
        config = compose_config([*overrides, f"features.cache_dir={tmp_path}"])
    return config


@pytest.mark.parametrize(("group", "name"), OPTIONS)
def test_every_option_composes_validates_and_builds(
    group: str, name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    config = _compose(group, name, request, tmp_path)  # compose_config validates
    part = getattr(config, group)
    assert type(part) is REGISTRY.options(group)[name].schema
    assert REGISTRY.option_of(group, part).name == name

    if group == "dataset":
        data = load_dataset(part, config.seed)
        assert len(data.x_train) == len(data.y_train) > 0 and len(data.x_test) == len(data.y_test) > 0
        if data.y_train.dtype.kind == "f":  # a regression table: one output, finite targets
            assert data.num_classes == 1 and np.isfinite(data.y_train).all()
        else:
            assert set(np.unique(data.y_train)) <= set(range(data.num_classes))
    elif group == "partition":
        labels = load_dataset(config.dataset, config.seed).y_train
        parts = partition_indices(labels, part, 4, config.seed)
        joined = np.concatenate(parts)
        assert len(parts) == 4 and sorted(joined.tolist()) == list(range(len(labels)))
    elif group == "strategy" and part.federated:
        strategy = build_strategy(part, num_clients=config.num_clients)
        assert isinstance(strategy, Strategy)
        assert type(strategy).__name__.lower() == name  # each option builds Flower's class of that name
    elif group == "strategy":
        with pytest.raises(ConfigError, match=rf"strategy='{name}' is not a federated strategy; expected one of"):
            build_strategy(part, num_clients=config.num_clients)
    elif group == "features":
        raw = load_dataset(config.dataset, config.seed)
        seen = prepare_dataset(config.dataset, config.seed, part)
        assert isinstance(seen, Dataset)
        np.testing.assert_array_equal(seen.y_train, raw.y_train)
        assert len(seen.x_train) == len(raw.x_train) and seen.x_test.shape[1:] == seen.input_shape


def test_a_name_that_does_not_match_the_chosen_option_is_refused_with_the_choices() -> None:
    with pytest.raises(ConfigError) as error:
        compose_config(["dataset=digits", "dataset.name=cifar"])
    message = str(error.value)
    assert message.startswith("dataset.name must be 'digits' for dataset=digits, got 'cifar'")
    assert (
        "['boston_housing', 'breast_cancer', 'diabetes', 'digits', 'digits_table', 'mnist', 'mnist_subset', 'table', 'wine']" in message
    )


def test_unregistered_configs_fail_with_the_choices() -> None:
    with pytest.raises(
        ConfigError, match=r"^dataset.name must be one of \['boston_housing', 'breast_cancer', 'diabetes',"
    ):
        load_dataset(DatasetConfig(name="cifar"), 0)
    digits = DigitsConfig()
    with pytest.raises(
        ConfigError,
        match=r"^features.name must be one of \['generate', 'impute', 'minmax', 'none', 'onehot', .*got 'blur'",
    ):
        prepare_dataset(digits, 0, FeaturesConfig(name="blur"))
    with pytest.raises(ConfigError, match=r"^strategy='centralized' is not a federated strategy; expected one of"):
        build_strategy(CentralizedConfig(), num_clients=2)


def test_importing_the_config_package_loads_no_torch_flower_or_loader() -> None:
    heavy = ["torch", "flwr", "sklearn", "datasets", "kymatio", "aureon.data", "aureon.features", "aureon.strategies"]
    code = f"import sys, aureon.config; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# ------------------------------------------------- the mechanism on a registry of its own
@dataclass
class _Scale:
    name: str = "scale"
    factor: int = 3


def scale(config: _Scale, *, value: int) -> int:
    return config.factor * value


def wrong_kind(config: _Scale, *, value: int) -> str:
    return str(value)


def test_a_new_option_is_one_decorated_class_and_one_builder() -> None:
    registry = Registry()
    schema = registry.register("toy", "scale", builder=f"{__name__}.scale")(_Scale)
    assert schema is _Scale
    assert registry.build("toy", _Scale(factor=4), expect=int, value=5) == 20
    assert registry.options("toy")["scale"].schema is _Scale


def test_the_registry_refuses_what_would_make_dispatch_ambiguous() -> None:
    registry = Registry()
    registry.register("toy", "scale", builder=f"{__name__}.scale")(_Scale)
    with pytest.raises(ValueError, match=r"_Scale.name defaults to 'scale', but the class is registered as toy=big"):
        registry.register("toy", "big")(_Scale)

    @dataclass
    class Other:
        name: str = "scale"

    with pytest.raises(ValueError, match=r"toy=scale is already registered by _Scale"):
        registry.register("toy", "scale")(Other)
    with pytest.raises(ValueError, match=r"_Scale is already registered as toy=scale"):
        registry.register("other", "scale")(_Scale)
    with pytest.raises(TypeError, match=r"must be a dataclass"):
        registry.register("toy", "plain")(type("Plain", (), {}))
    with pytest.raises(ValueError, match=r"builder must be a dotted path"):
        registry.register("toy", "x", builder="scale")


def test_build_checks_the_builder_and_what_it_returns() -> None:
    registry = Registry()
    registry.register("toy", "scale", builder=f"{__name__}.wrong_kind")(_Scale)
    with pytest.raises(TypeError, match=r"wrong_kind \(the builder of toy=scale\) returned a str, expected a int"):
        registry.build("toy", _Scale(), expect=int, value=1)
    with pytest.raises(ConfigError, match=r"^config group must be one of \['toy'\], got 'nope'"):
        registry.options("nope")

    missing = Registry()
    missing.register("toy", "scale", builder=f"{__name__}.no_such_builder")(_Scale)
    with pytest.raises(ImportError, match=r"has no 'no_such_builder'"):
        missing.build("toy", _Scale(), expect=int, value=1)

    nothing = Registry()
    nothing.register("toy", "scale")(_Scale)
    with pytest.raises(ConfigError, match=r"^toy=scale builds nothing here; expected one of \[\]"):
        nothing.build("toy", _Scale(), expect=int, value=1)


def test_groups_is_a_read_only_view_of_the_registry() -> None:
    assert dict(GROUPS["strategy"]) == {n: o.schema for n, o in REGISTRY.options("strategy").items()}
    with pytest.raises(TypeError):
        GROUPS["strategy"]["mine"] = CentralizedConfig  # type: ignore[index]
