"""results.json tells the truth about a mixed federation: who gave a DP guarantee, whether a model was made."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aureon.tracking import ClientRound, RoundRecord, RunTracker
from aureon.tracking.records import Rejection, aggregated_clients, client_names, privacy_statement

CLAIM = {"kind": "sample-level DP-SGD on each client's data (Opacus)", "target_epsilon": 2.0, "delta": 1e-5}


def _client(node_id: int, *, label: int | None, epsilon: float | None, loss: float | None = None) -> ClientRound:
    return ClientRound(label, node_id, 100, loss, epsilon, 1000, 900)


def _round(
    n: int, clients: list[ClientRound], *, rejected: tuple[int, ...] = (), error: str | None = None
) -> RoundRecord:
    return RoundRecord(
        round=n,
        test_accuracy=0.5,
        test_loss=1.0,
        seconds=0.1,
        clients=clients,
        rejected=[Rejection(node_id, "update-validation", "no epsilon") for node_id in rejected],
        aggregation_error=error,
    )


def _strict(path: Path) -> dict[str, Any]:
    def refuse(word: str) -> None:
        raise ValueError(f"results.json holds the bare word {word}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_the_guarantee_is_stated_when_every_aggregated_client_reported_its_epsilon() -> None:
    rounds = [_round(1, [_client(7, label=0, epsilon=0.5), _client(9, label=1, epsilon=0.6)])]
    assert privacy_statement(CLAIM, rounds) == {**CLAIM, "clients_without_guarantee": []}


def test_an_aggregated_client_without_epsilon_voids_the_claim_and_is_named_by_node() -> None:
    rounds = [
        _round(1, [_client(7, label=0, epsilon=0.5), _client(9, label=None, epsilon=None)]),
        _round(2, [_client(7, label=0, epsilon=0.8), _client(9, label=None, epsilon=None)]),
    ]
    statement = privacy_statement(CLAIM, rounds)
    assert statement["kind"] == "none" and statement["configured"] == CLAIM
    assert statement["clients_without_guarantee"] == [{"node_id": 9, "partition_id": None, "rounds": [1, 2]}]
    assert "nodes [9]" in statement["reason"]


def test_clients_that_were_rejected_or_in_an_aborted_round_do_not_void_the_claim() -> None:
    rounds = [
        _round(1, [_client(7, label=0, epsilon=0.5), _client(9, label=None, epsilon=None)], rejected=(9,)),
        _round(2, [_client(9, label=None, epsilon=None)], error="fewer than deployment.min_train_nodes"),
    ]
    assert [c.node_id for c in aggregated_clients(rounds[0])] == [7]
    assert aggregated_clients(rounds[1]) == []
    assert privacy_statement(CLAIM, rounds)["kind"] == CLAIM["kind"]


def test_a_run_without_dp_states_none_and_nothing_more() -> None:
    rounds = [_round(1, [_client(9, label=None, epsilon=None)])]
    assert privacy_statement({"kind": "none"}, rounds) == {"kind": "none"}


def test_clients_are_named_by_their_label_unless_they_have_none_or_share_one() -> None:
    clients = [
        _client(11, label=0, epsilon=1.0),
        _client(12, label=3, epsilon=1.0),
        _client(13, label=3, epsilon=2.0),
        _client(14, label=None, epsilon=None),
    ]
    assert client_names(clients) == ["0", "node-12", "node-13", "node-14"]
    record = _round(1, clients).to_json()
    assert record["epsilon_per_client"] == {"0": 1.0, "node-12": 1.0, "node-13": 2.0, "node-14": None}
    assert [c["node_id"] for c in record["clients"]] == [11, 12, 13, 14]


def _tracker(tmp_path: Path, privacy: dict[str, Any]) -> RunTracker:
    return RunTracker(tmp_path, config_yaml="", summary={"privacy": privacy}, num_rounds=2)


def test_a_run_whose_every_round_was_aborted_is_not_finished_and_says_why(tmp_path: Path) -> None:
    tracker = _tracker(tmp_path, CLAIM)
    tracker.log_initial(0.1, 2.3)
    for n in (1, 2):
        tracker.log_round(_round(n, [_client(9, label=None, epsilon=None)], rejected=(9,), error=f"reason {n}"))
    results = tracker.finish({})
    assert not results["finished"] and results["rounds_aborted"] == [1, 2]
    assert results["reason"].startswith("every round (2) was aborted") and "round 1: reason 1" in results["reason"]
    assert _strict(tmp_path / "results.json") == results


def test_a_run_with_one_aggregated_round_is_finished(tmp_path: Path) -> None:
    tracker = _tracker(tmp_path, {"kind": "none"})
    tracker.log_round(_round(1, [_client(9, label=None, epsilon=None)], error="kept"))
    tracker.log_round(_round(2, [_client(9, label=None, epsilon=None)]))
    results = tracker.finish({})
    assert results["finished"] and "reason" not in results and results["rounds_aborted"] == [1]


@pytest.mark.parametrize("loss", [float("nan"), float("inf")])
def test_a_non_finite_train_loss_is_written_as_null_in_strict_json(tmp_path: Path, loss: float) -> None:
    tracker = _tracker(tmp_path, {"kind": "none"})
    tracker.log_round(_round(1, [_client(9, label=None, epsilon=None, loss=loss)]))
    written = _strict(tmp_path / "results.json")
    assert written["rounds"][0]["clients"][0]["train_loss"] is None
    assert written["non_finite_fields"] == ["rounds[0].clients[0].train_loss"]


def test_the_results_file_states_the_claim_the_rounds_support(tmp_path: Path) -> None:
    tracker = _tracker(tmp_path, CLAIM)
    tracker.log_round(_round(1, [_client(7, label=0, epsilon=0.5)]))
    assert _strict(tmp_path / "results.json")["privacy"]["kind"] == CLAIM["kind"]
    tracker.log_round(_round(2, [_client(7, label=0, epsilon=0.7), _client(9, label=None, epsilon=None)]))
    privacy = _strict(tmp_path / "results.json")["privacy"]
    assert privacy["kind"] == "none" and privacy["clients_without_guarantee"][0]["node_id"] == 9
