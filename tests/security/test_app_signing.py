"""App signing and the public-port gate, checked against Flower's own SuperNode code (no processes).

The SuperNode's verifier (``_verify_fab``) and trusted-entities loader are
Flower's; running them on what AUREON writes shows the formats agree.
"""

from __future__ import annotations

import asyncio
import hashlib
import textwrap
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
from flwr.proto.fab_pb2 import Fab as FabProto
from flwr.proto.fab_pb2 import GetFabResponse
from flwr.supercore.fab import Fab
from flwr.supernode.cli.flower_supernode import (
    _try_obtain_trusted_entities,
    _validate_public_keys_ed25519,
)
from flwr.supernode.start_client_internal import _verify_fab

from aureon.launch.app_signing import (
    VALID_MARKER,
    SignatureStore,
    fab_verifications,
    load_signing_key,
    sign_app,
    snapshot_app,
    write_signing_key,
)
from aureon.launch.superlink_process import FleetOnlyGate

FAB = b"PK\x03\x04 pretend this is a zipped Flower app"
CONTROL_PORT, PUBLIC_PORT = 19093, 19092


def _keys(tmp_path: Path, name: str) -> tuple[Path, dict[str, str]]:
    key, trusted = tmp_path / f"{name}.key", tmp_path / f"{name}.yaml"
    write_signing_key(key, trusted)
    entities = _try_obtain_trusted_entities(trusted)
    assert entities is not None
    _validate_public_keys_ed25519(entities)  # exits the process if Flower rejects the file
    return key, entities


def test_flower_supernode_accepts_a_fab_signed_by_the_trusted_key(tmp_path: Path) -> None:
    key, trusted = _keys(tmp_path, "server")
    fab = Fab(hashlib.sha256(FAB).hexdigest(), FAB, fab_verifications(FAB, load_signing_key(key)))
    assert fab.verifications[VALID_MARKER]
    assert _verify_fab(fab, trusted)


def test_flower_supernode_refuses_unsigned_tampered_and_foreign_fabs(tmp_path: Path) -> None:
    key, trusted = _keys(tmp_path, "server")
    other_key, _ = _keys(tmp_path, "stranger")
    signed = fab_verifications(FAB, load_signing_key(key))
    tampered = FAB + b"\x00"
    assert not _verify_fab(Fab("x", FAB, {VALID_MARKER: "Valid"}), trusted)
    assert not _verify_fab(Fab("x", tampered, signed), trusted)
    assert not _verify_fab(Fab("x", FAB, fab_verifications(FAB, load_signing_key(other_key))), trusted)


def test_signature_store_round_trip_and_unknown_hashes(tmp_path: Path) -> None:
    store = SignatureStore(tmp_path / "sigs")
    key, _ = _keys(tmp_path, "server")
    record = fab_verifications(FAB, load_signing_key(key))
    fab_hash = store.save(FAB, record)
    assert fab_hash == hashlib.sha256(FAB).hexdigest() and store.load(fab_hash) == record
    assert store.load("0" * 64) == {}
    assert store.load("../../etc/passwd") == {}


def test_sign_app_signs_exactly_the_fab_flwr_run_builds_from_a_frozen_copy(tmp_path: Path) -> None:
    from flwr.cli.build import build_fab_from_disk

    app = tmp_path / "app"
    (app / "demo").mkdir(parents=True)
    (app / "demo" / "__init__.py").write_text("")
    (app / "pyproject.toml").write_text(textwrap.dedent("""\
        [project]
        name = "demo"
        version = "1.0.0"
        dependencies = ["flwr>=1.42"]
        [tool.flwr.app]
        publisher = "aureon"
        [tool.flwr.app.components]
        serverapp = "demo.server:app"
        clientapp = "demo.client:app"
        [tool.flwr.app.config]
        overrides = ""
        """))
    key, trusted = _keys(tmp_path, "server")
    store = SignatureStore(tmp_path / "sigs")
    frozen = snapshot_app(app, tmp_path / "frozen")
    assert build_fab_from_disk(frozen) == build_fab_from_disk(app)
    fab_hash = sign_app(frozen, key_path=key, store=store)
    (app / "demo" / "__init__.py").write_text("print('edited after signing')")
    fab = build_fab_from_disk(frozen)
    assert fab_hash == hashlib.sha256(fab).hexdigest()
    assert _verify_fab(Fab(fab_hash, fab, store.load(fab_hash)), trusted)


class _Recorder:
    """A stand-in for Flower's app: records the paths it was asked for, answers with a GetFab reply."""

    def __init__(self, reply: bytes = b"") -> None:
        self.paths: list[str] = []
        self.reply = reply

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/protobuf"), (b"content-length", b"1")]})
        await send({"type": "http.response.body", "body": self.reply[:5], "more_body": True})
        await send({"type": "http.response.body", "body": self.reply[5:]})


def _call(gate: FleetOnlyGate, path: str, port: int, kind: str = "http") -> list[MutableMapping[str, Any]]:
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "websocket.connect"} if kind == "websocket" else {"type": "http.request", "body": b""}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": kind, "method": "POST", "path": path, "server": ("10.0.0.5", port), "client": ("203.0.113.9", 5555)}
    asyncio.run(gate(scope, receive, send))
    return sent


@pytest.mark.parametrize("path", ["/v1/control/list-runs", "/v1/control/register-node", "/v1/control/start-run",
                                  "/v1/runtime/acquire-task", "/docs", "/v1/fleet"])
def test_public_port_refuses_everything_but_the_fleet_api(path: str) -> None:
    inner = _Recorder()
    sent = _call(FleetOnlyGate(inner, control_port=CONTROL_PORT, signatures=None), path, PUBLIC_PORT)
    assert sent[0]["status"] == 403 and inner.paths == []


def test_public_port_closes_websockets_and_serves_the_fleet_api() -> None:
    inner = _Recorder()
    gate = FleetOnlyGate(inner, control_port=CONTROL_PORT, signatures=None)
    assert _call(gate, "/v1/control/stream-logs", PUBLIC_PORT, kind="websocket")[-1]["type"] == "websocket.close"
    assert _call(gate, "/v1/fleet/pull-messages", PUBLIC_PORT)[0]["status"] == 200
    assert _call(gate, "/v1/control/list-runs", CONTROL_PORT)[0]["status"] == 200
    assert inner.paths == ["/v1/fleet/pull-messages", "/v1/control/list-runs"]


def test_get_fab_on_the_public_port_carries_the_stored_signature(tmp_path: Path) -> None:
    key, trusted = _keys(tmp_path, "server")
    store = SignatureStore(tmp_path / "sigs")
    fab_hash = store.save(FAB, fab_verifications(FAB, load_signing_key(key)))
    unsigned = FAB + b" changed"
    for content, expect in ((FAB, True), (unsigned, False)):
        reply = GetFabResponse(fab=FabProto(hash_str=hashlib.sha256(content).hexdigest(), content=content))
        gate = FleetOnlyGate(_Recorder(reply.SerializeToString()), control_port=CONTROL_PORT, signatures=store)
        start, body = _call(gate, "/v1/fleet/get-fab", PUBLIC_PORT)
        parsed = GetFabResponse.FromString(body["body"])
        assert dict(start["headers"])[b"content-length"] == str(len(body["body"])).encode()
        assert parsed.fab.verifications[VALID_MARKER] == "Valid"
        fab = Fab(parsed.fab.hash_str, parsed.fab.content, dict(parsed.fab.verifications))
        assert _verify_fab(fab, trusted) is expect
    assert fab_hash == hashlib.sha256(FAB).hexdigest()
