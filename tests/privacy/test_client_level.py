"""Client-level DP (DP-FedAvg): its epsilon, its budget, its clipping, both guarantees, bad settings."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, Message
from opacus.accountants import RDPAccountant
from scipy.integrate import quad
from scipy.optimize import minimize_scalar

from aureon import keys
from aureon.exceptions import ConfigError
from aureon.federated.apps import make_client_app
from aureon.federated.server import run_server
from aureon.launch.run_config import compose_config
from aureon.privacy.client_level import ClientLevelAccountant, guarantee_lines, plan_client_level
from tests.inprocess_grid import InProcessGrid

BASE = [
    "dataset=digits",
    "features=none",
    "model=logreg",
    "num_clients=10",
    "strategy.fraction_train=0.5",
    "privacy=client_level",
    "train.local_epochs=1",
]


@pytest.fixture(autouse=True)
def quiet_flower() -> None:
    logging.getLogger("flwr").setLevel(logging.ERROR)


# ---------------------------------------------------------------- the accountant, checked independently


def subsampled_gaussian_rdp(*, q: float, sigma: float, order: float) -> float:
    """RDP of the Poisson-subsampled Gaussian at any order > 1, by numerical integration.

    A_alpha = E_{z ~ N(0, sigma^2)} [((1 - q) + q exp((2z - 1) / (2 sigma^2)))^alpha]
    (Mironov, Talwar, Zhang 2019, Sec. 3.3); RDP = log(A_alpha) / (alpha - 1).
    """

    def log_integrand(z: float) -> float:
        ratio = math.log1p(q * math.expm1((2 * z - 1) / (2 * sigma**2)))
        return -(z**2) / (2 * sigma**2) - math.log(sigma * math.sqrt(2 * math.pi)) + order * ratio

    peak = minimize_scalar(lambda z: -log_integrand(z), bounds=(-60 * sigma, 60 * sigma + order), method="bounded")
    top = -float(peak.fun)
    centre = float(peak.x)  # the integrand is negligible beyond 40 sigma of its peak
    value, _ = quad(lambda z: math.exp(log_integrand(z) - top), centre - 40 * sigma, centre + 40 * sigma, limit=500)
    return (top + math.log(value)) / (order - 1)


def independent_epsilon(*, q: float, sigma: float, rounds: int, delta: float) -> float:
    """Epsilon from RDP at orders 1.25..64, with Balle et al.'s (2020) RDP-to-DP conversion."""
    best = math.inf
    for order in [*np.arange(1.25, 12.0, 0.25), *range(12, 65)]:
        rdp = rounds * subsampled_gaussian_rdp(q=q, sigma=sigma, order=float(order))
        eps = rdp + math.log1p(-1 / order) - (math.log(delta) + math.log(order)) / (order - 1)
        best = min(best, eps)
    return best


@pytest.mark.parametrize(
    ("num_clients", "sampled", "rounds", "target"),
    [(1000, 100, 20, 8.0), (10, 5, 3, 8.0), (100, 10, 50, 2.0), (20, 20, 5, 4.0)],
)
def test_client_level_epsilon_matches_an_independent_accountant(
    num_clients: int, sampled: int, rounds: int, target: float
) -> None:
    config = compose_config([*BASE, f"privacy.target_epsilon={target}"]).privacy.client_level()
    assert config is not None
    plan = plan_client_level(config, num_clients=num_clients, num_sampled=sampled, num_rounds=rounds)
    accountant = ClientLevelAccountant(target_epsilon=target, target_delta=config.target_delta)
    for _ in range(rounds):
        reported = accountant.compose(plan.noise_multiplier, plan.sample_rate)
    assert target - 0.01 <= reported <= target
    # RDP by numerical integration, not Opacus' series, on another grid of orders.
    own = independent_epsilon(q=plan.sample_rate, sigma=plan.noise_multiplier, rounds=rounds, delta=1e-5)
    assert own == pytest.approx(reported, rel=0.005)
    # Opacus' own accountant, stepped round by round over its default orders.
    opacus = RDPAccountant()
    for _ in range(rounds):
        opacus.step(noise_multiplier=plan.noise_multiplier, sample_rate=plan.sample_rate)
    assert opacus.get_epsilon(delta=1e-5) == pytest.approx(reported, rel=0.02)


def test_the_accountant_refuses_the_round_past_the_budget() -> None:
    accountant = ClientLevelAccountant(target_epsilon=1.0, target_delta=1e-5)
    while not accountant.would_exceed(2.0, 0.1):
        accountant.compose(2.0, 0.1)
    assert accountant.epsilon <= 1.0 < accountant.epsilon_after(2.0, 0.1)


# ---------------------------------------------------------------- real federations (in-process grid)


def _run(run_dir: Path, overrides: list[str], **grid: Any) -> dict[str, Any]:
    config = compose_config([*BASE, *overrides])
    app = make_client_app(lambda _ctx: config)
    return run_server(InProcessGrid(app, num_nodes=config.num_clients, **grid), config, run_dir)


@pytest.mark.usefixtures("server_identity")
def test_the_budget_stops_a_resumed_run_before_the_round_that_would_exceed_it(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    first = _run(run_dir, ["num_rounds=2"])
    assert first["finished"] and [r["client_level"]["released"] for r in first["rounds"]] == [True, True]
    spent = first["rounds"][-1]["client_level"]["epsilon"]
    assert 7.99 <= spent <= 8.0

    resumed = _run(run_dir, ["num_rounds=4", f"resume={run_dir}"])

    assert resumed["finished"] is False
    assert "client-level privacy budget: round 3 would bring epsilon to" in resumed["reason"]
    assert resumed["rounds_completed"] == 2
    assert resumed["privacy"]["client_level"]["epsilon_spent"] == pytest.approx(spent)
    # The noise the run released with is kept, not the one four rounds would have been planned with.
    assert (
        resumed["rounds"][-1]["client_level"]["noise_multiplier"]
        == first["rounds"][0]["client_level"]["noise_multiplier"]
    )


@pytest.mark.usefixtures("server_identity")
def test_a_combined_run_states_both_guarantees_separately(tmp_path: Path) -> None:
    results = _run(
        tmp_path,
        [
            "num_rounds=2",
            "privacy.sample_level.enabled=true",
            "privacy.sample_level.target_epsilon=3",
            "train.batch_size=32",
        ],
    )
    privacy = results["privacy"]
    client, sample = privacy["client_level"], privacy["sample_level"]
    assert (client["target_epsilon"], client["delta"]) == (8.0, 1e-5)
    assert (sample["target_epsilon"], sample["delta"]) == (3.0, 1e-5)
    assert "coordinator" in client["noise"] and "each client" in sample["protects"]
    assert sample["clients_without_guarantee"] == []
    last = results["rounds"][-1]
    assert 0 < last["epsilon_max"] <= 3.0
    assert 0 < last["client_level"]["epsilon"] <= 8.0
    lines = guarantee_lines(privacy, sample_epsilon=results["final"]["epsilon_max"])
    assert len(lines) == 2
    assert lines[0].startswith("client-level DP-FedAvg: epsilon") and "delta 1e-05" in lines[0]
    assert lines[1].startswith("sample-level DP-SGD") and "delta 1e-05" in lines[1]


@pytest.mark.usefixtures("server_identity")
@pytest.mark.parametrize("clipping", ["fixed", "adaptive"])
def test_client_side_clipping_bounds_every_update_that_reaches_the_server(tmp_path: Path, clipping: str) -> None:
    norm = 0.05
    seen: list[tuple[float, float]] = []

    def measure(message: Message, reply: Message) -> Message:
        if message.metadata.message_type == "train" and not reply.has_error():
            sent = next(iter(message.content.array_records.values())).to_numpy_ndarrays()
            got = next(iter(reply.content.array_records.values())).to_numpy_ndarrays()
            bound = float(next(iter(message.content.config_records.values()))["clipping_norm"])
            update = math.sqrt(sum(float(np.sum((g - s) ** 2)) for g, s in zip(got, sent, strict=True)))
            seen.append((update, bound))
        return reply

    results = _run(
        tmp_path,
        [
            "num_rounds=2",
            "privacy.clip_on=client",
            f"privacy.clipping={clipping}",
            f"privacy.clipping_norm={norm}",
            "privacy.clipped_count_stddev=2.0",
        ],
        intercept=measure,
    )
    assert results["finished"] and len(seen) == 10
    assert all(update <= bound * (1 + 1e-5) for update, bound in seen)
    assert any(update >= bound * 0.99 for update, bound in seen)  # the updates were larger: clipping bit
    if clipping == "fixed":
        assert {bound for _, bound in seen} == {norm}
    else:  # the bound moved towards the median update norm, as the server's wrapper tracked it
        assert results["rounds"][1]["client_level"]["clipping_norm"] != norm


# ---------------------------------------------------------------- uniform weighting


@pytest.mark.usefixtures("server_identity")
def test_every_client_weighs_the_same_whatever_it_declares(tmp_path: Path) -> None:
    """A client declaring 10^6 examples moves the noisy mean no more than one declaring 1."""
    declared: list[float] = []

    def inflate(message: Message, reply: Message) -> Message:
        if message.metadata.message_type == "train" and not reply.has_error():
            metrics = next(iter(reply.content.metric_records.values()))
            metrics[keys.NUM_EXAMPLES] = 1_000_000 if len(declared) == 0 else 1
            declared.append(float(metrics[keys.NUM_EXAMPLES]))
        return reply

    results = _run(tmp_path, ["num_rounds=1", "aggregation.max_weight=1e9"], intercept=inflate)
    assert results["finished"] and declared[0] == 1_000_000
    assert results["rounds"][0]["capped"] == []  # nothing capped: the weight was ignored, not lowered


@pytest.mark.usefixtures("server_identity")
def test_uniform_mean_divides_by_the_sampled_count() -> None:
    from flwr.serverapp.strategy import FedAvg

    from aureon.privacy.client_level_strategy import UniformMean
    from tests.strategies.replies import reply

    mean = UniformMean(FedAvg(), num_sampled=4, weighted_by_key=keys.NUM_EXAMPLES)
    mean._sent = {1: ArrayRecord({"w": Array(np.zeros(2, dtype=np.float32))})}
    replies = [
        reply(1, {"w": np.array([4.0, 0.0], dtype=np.float32)}, {keys.NUM_EXAMPLES: 1}),
        reply(2, {"w": np.array([0.0, 4.0], dtype=np.float32)}, {keys.NUM_EXAMPLES: 99}),
    ]
    aggregated, _ = mean.aggregate_train(1, replies)
    assert aggregated is not None
    # Two of four sampled replied: (4, 0) + (0, 4), over 4, each weighing 1 whatever it declared.
    np.testing.assert_allclose(aggregated["w"].numpy(), [1.0, 1.0])
    assert replies[1].content[keys.METRICS][keys.NUM_EXAMPLES] == 99  # the replies themselves are left alone


# ---------------------------------------------------------------- bad settings


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("privacy.clipping_norm=0", r"privacy.clipping_norm must be > 0, got 0.0"),
        ("privacy.clipping_norm=-1", r"privacy.clipping_norm must be > 0, got -1.0"),
        ("privacy.target_quantile=1.0", r"privacy.target_quantile must be in \(0, 1\), got 1.0"),
        ("privacy.target_quantile=0", r"privacy.target_quantile must be in \(0, 1\), got 0.0"),
        ("privacy.clipping=median", r"privacy.clipping must be one of 'fixed', 'adaptive', got 'median'"),
        ("privacy.clip_on=nowhere", r"privacy.clip_on must be one of 'server', 'client', got 'nowhere'"),
        ("privacy.target_epsilon=0", r"privacy.target_epsilon must be a finite number > 0"),
        ("privacy.clipped_count_stddev=-1", r"privacy.clipped_count_stddev must be > 0"),
        (
            "privacy.sample_level.enabled=true privacy.sample_level.max_grad_norm=0",
            r"privacy.sample_level.max_grad_norm must be > 0",
        ),
        ("strategy=fedadam", r"strategy must be one of \['fedavg', 'fedprox'\] with privacy=client_level"),
        ("strategy=fedmedian", r"strategy must be one of \['fedavg', 'fedprox'\]"),
        ("secure_aggregation=secagg_plus", r"secure_aggregation must be 'none' with privacy=client_level"),
        ("privacy.clip_on=client compression=int8", r"compression must be 'none' with privacy.clip_on=client"),
        ("deployment.min_train_nodes=8", r"deployment.min_train_nodes must be null or <= 5"),
    ],
)
def test_bad_client_level_settings_are_refused_naming_the_field(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        compose_config([*BASE, *override.split()])


def test_compression_is_allowed_when_the_server_clips_the_decoded_update() -> None:
    compose_config([*BASE, "compression=int8"])


def test_adaptive_clipping_with_too_little_count_noise_names_the_setting() -> None:
    config = compose_config([*BASE, "privacy.clipping=adaptive"]).privacy.client_level()
    assert config is not None
    with pytest.raises(ConfigError, match=r"privacy.clipped_count_stddev must be > .* got 0.25 \(null: sampled"):
        plan_client_level(config, num_clients=10, num_sampled=5, num_rounds=3)


def test_privacy_dispatch_is_by_method_not_class() -> None:
    client_only = compose_config(BASE).privacy
    assert client_only.dp_sgd() is None and client_only.client_level() is client_only
    sample_only = compose_config(["dataset=digits", "privacy=dp_sgd"]).privacy
    assert sample_only.client_level() is None and sample_only.dp_sgd() is sample_only
    both = compose_config([*BASE, "privacy.sample_level.enabled=true"]).privacy
    assert both.dp_sgd() is both.sample_level and both.client_level() is both  # type: ignore[attr-defined]
