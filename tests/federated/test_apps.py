"""The apps a user gets: aureon.client_app/server_app for a given config, and the one `flwr run .` starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from flwr.app import Context, Message, MessageType, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import ServerApp

import aureon
from aureon import keys
from aureon.exceptions import ConfigError
from aureon.federated.refusals import CLIENT_CONFIG_CODE
from aureon.launch.run_config import run_config_for
from tests.federated.messages import digits_config, initial_arrays, train_message

pytestmark = pytest.mark.usefixtures("server_identity")

DIGITS = ["dataset=digits", "features=none", "model=cnn", "num_clients=2", "num_rounds=2", "train.batch_size=32"]


def _context(*, run_config: dict | None = None, **node_config: object) -> Context:
    node = {keys.NODE_PARTITION_ID: 0, keys.NODE_NUM_PARTITIONS: 2, **node_config}
    return Context(run_id=7, node_id=11, node_config=node, state=RecordDict(), run_config=run_config or {})


def _evaluate_message() -> Message:
    content = RecordDict({keys.ARRAYS: initial_arrays(digits_config())})
    return Message(content=content, dst_node_id=11, message_type=MessageType.EVALUATE)


def test_the_flwr_run_clientapp_without_overrides_refuses_with_one_clear_error() -> None:
    from clients.app import app

    for message in (train_message(initial_arrays(digits_config()), 1), _evaluate_message()):
        reply = app(message, _context())
        assert reply.has_error()
        assert reply.error.code == CLIENT_CONFIG_CODE
        assert "run_config has no 'overrides' entry" in reply.error.reason
        assert "aureon.client_app(config)" in reply.error.reason


def test_the_flwr_run_clientapp_still_trains_with_the_runs_overrides(tmp_path: Path) -> None:
    from clients.app import app

    run_config = run_config_for([*DIGITS, "privacy=none"], tmp_path / "run")
    reply = app(train_message(initial_arrays(digits_config()), 1), _context(run_config=run_config))
    assert not reply.has_error(), reply.error.reason if reply.has_error() else ""
    assert (tmp_path / "run" / "clients" / "partition-0").is_dir()  # its client state under the run directory


def test_client_app_from_overrides_trains_without_run_config_and_keeps_its_ledger_where_told(tmp_path: Path) -> None:
    app = aureon.client_app(DIGITS, state_dir=tmp_path / "ledgers")
    assert isinstance(app, ClientApp)
    reply = app(train_message(initial_arrays(digits_config()), 1), _context())
    assert not reply.has_error(), reply.error.reason if reply.has_error() else ""
    assert keys.EPSILON in reply.content[keys.METRICS]
    assert (tmp_path / "ledgers" / "partition-0" / "privacy-ledger.json").is_file()


def test_client_app_from_a_composed_config_refuses_a_nodes_own_overrides(tmp_path: Path) -> None:
    app = aureon.client_app(digits_config("privacy=none"), state_dir=tmp_path)
    context = _context(**{keys.NODE_OVERRIDES: "dataset.path=/data"})
    reply = app(train_message(initial_arrays(digits_config()), 1), context)
    assert reply.error.code == CLIENT_CONFIG_CODE
    assert "['dataset.path=/data']" in reply.error.reason and "list of overrides" in reply.error.reason
    assert not app(train_message(initial_arrays(digits_config()), 1), _context()).has_error()


def test_a_string_of_overrides_is_refused_with_the_list_to_write() -> None:
    with pytest.raises(
        ConfigError, match=r"got the string 'dataset=digits privacy=none'.*\['dataset=digits', 'privacy=none'\]"
    ):
        aureon.client_app("dataset=digits privacy=none")
    with pytest.raises(ConfigError, match="must be strings"):
        aureon.server_app(["dataset=digits", 3])  # type: ignore[list-item]


def test_a_bad_override_fails_when_the_app_is_built_not_in_every_round() -> None:
    with pytest.raises(Exception, match="no_such_dataset"):
        aureon.client_app(["dataset=no_such_dataset"])


def test_server_app_takes_overrides_or_a_config() -> None:
    assert isinstance(aureon.server_app(DIGITS), ServerApp)
    assert isinstance(aureon.server_app(digits_config(), run_dir="somewhere"), ServerApp)


def test_importing_aureon_loads_neither_flower_nor_torch() -> None:
    code = "import sys, aureon; print(sorted({m.split('.')[0] for m in sys.modules} & {'flwr', 'torch', 'opacus'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
