"""How AUREON starts Ray for a simulation: sized to the clients, logging by ``verbose``."""

from __future__ import annotations

import copy
import os

import pytest

from aureon.config import AureonConfig
from aureon.launch.ray_runtime import local_cpus, ray_init_args, set_local_ray_env
from aureon.launch.run_config import compose_config


@pytest.fixture()
def config() -> AureonConfig:
    return copy.deepcopy(compose_config([]))  # compose_config caches: never change its object


@pytest.mark.parametrize(
    ("clients", "client_cpus", "machine", "expected"),
    [(2, 1.0, 16, 2), (5, 1.0, 2, 2), (5, 0.5, 16, 3), (1, 4.0, 2, 2), (100, 1.0, 8, 8)],
)
def test_local_ray_gets_what_the_clients_can_use_at_most_the_machine(
    config: AureonConfig, clients: int, client_cpus: float, machine: int, expected: int
) -> None:
    config.num_clients, config.simulation.client_cpus = clients, client_cpus
    assert local_cpus(config, available=machine) == expected


def test_a_cluster_address_is_joined_as_it_is(config: AureonConfig) -> None:
    config.simulation.ray_address = "auto"
    args = ray_init_args(config)
    assert args["address"] == "auto" and "num_cpus" not in args


def test_verbose_decides_what_ray_prints(config: AureonConfig) -> None:
    config.verbose = False
    assert ray_init_args(config)["log_to_driver"] is False
    config.verbose = True
    assert ray_init_args(config)["log_to_driver"] is True


def test_local_ray_processes_start_with_few_malloc_arenas_unless_the_user_chose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    set_local_ray_env()
    assert os.environ["MALLOC_ARENA_MAX"] == "2"
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    set_local_ray_env()
    assert os.environ["MALLOC_ARENA_MAX"] == "8"


def test_a_local_ray_starts_without_its_autoscaler_and_log_monitors() -> None:
    """Their two Python processes cost ~95 MB; a fixed local Ray with logs off needs neither."""
    from ray._private import parameter

    from aureon.launch.ray_runtime import _without_monitors

    original = parameter.RayParams
    with _without_monitors():
        params = parameter.RayParams(num_cpus=1)
        assert params.no_monitor is True and params.include_log_monitor is False
    assert parameter.RayParams is original
    default = parameter.RayParams(num_cpus=1)
    assert default.no_monitor is False and default.include_log_monitor is None
