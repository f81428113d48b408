"""How AUREON starts Ray for a simulation: sized to the clients, logging by ``verbose``."""

from __future__ import annotations

import copy

import pytest

from aureon.config import AureonConfig
from aureon.launch.ray_runtime import local_cpus, ray_init_args
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
