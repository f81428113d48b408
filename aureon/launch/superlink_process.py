"""``python -m aureon.launch.superlink_process``: Flower's SuperLink with its Control API on loopback only.

Flower 1.42's ``flower-superlink`` serves the Fleet API (SuperNodes), the
Control API (``flwr run``, ``flwr list``, ``flwr supernode register``) and the
Runtime API (ServerApp processes) from one FastAPI app on one ``--host/--port``;
``--control-api-address`` and ``--fleet-api-address`` are deprecated no-ops and
``--serverappio-api-address`` is rejected. Its open-source build has no
Control API login (``FLWR_OIDC_ENABLED=1`` exits: OIDC is Enterprise-only), so
anyone who reaches that port with the CA certificate could register nodes,
list runs and submit code. This process runs the same app, built by Flower's
own ``create_app`` from Flower's own arguments, on two sockets of one server:

* Flower's ``--host/--port`` (AUREON passes 127.0.0.1): every API, for the
  server's own ``flwr`` calls and its ServerApp runtime;
* ``--public-host/--public-port``: the Fleet API (``/v1/fleet/*``) only; any
  other path is answered 403 before it reaches Flower.

On the public socket a FAB fetched by a SuperNode also gets the server's
signature record attached (see ``aureon.launch.app_signing``).

This leans on three Flower internals (``_parse_superlink_lifespan_config``,
``SuperLinkLifespan``, ``create_app``), which is why flwr is pinned below 1.43.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from aureon.launch.app_signing import VALID_MARKER, SignatureStore

Scope = MutableMapping[str, Any]
ASGIMessage = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[ASGIMessage]]
Send = Callable[[ASGIMessage], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

FLEET_PREFIX = "/v1/fleet/"
GET_FAB_PATH = "/v1/fleet/get-fab"
LOG = logging.getLogger("aureon.superlink")
# Legacy switches that would start extra gRPC Control/Fleet servers on Flower's default 0.0.0.0 ports.
_LEGACY_GRPC_SWITCHES = ("FLWR_INTERNAL_GRPC_CONTROL_API", "FLWR_INTERNAL_GRPC_FLEET_API")
_REFUSAL = json.dumps(
    {"detail": "only the Fleet API is served on this port; the Control API listens on the server's loopback"}
).encode()


class FleetOnlyGate:
    """ASGI wrapper: connections to any port but the loopback one reach the Fleet API only."""

    def __init__(self, app: ASGIApp, *, control_port: int, signatures: SignatureStore | None) -> None:
        self.app = app
        self.control_port = control_port
        self.signatures = signatures

    def _via_control_port(self, scope: Scope) -> bool:
        """True only for a connection accepted on the loopback socket (fail closed otherwise)."""
        server = scope.get("server")
        return server is not None and int(server[1]) == self.control_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or self._via_control_port(scope):
            await self.app(scope, receive, send)
        elif scope["type"] != "http" or not str(scope.get("path", "")).startswith(FLEET_PREFIX):
            await _refuse(scope, receive, send)
        elif scope.get("path") == GET_FAB_PATH and self.signatures is not None:
            await self.app(scope, receive, _attach_signatures(send, self.signatures))
        else:
            await self.app(scope, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
    """403 for HTTP, close for anything else; the request never reaches Flower."""
    client = scope.get("client")
    LOG.warning(
        "refused %s %s from %s on the public port", scope.get("method", scope["type"]), scope.get("path"), client
    )
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.close", "code": 1008})
        return
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(_REFUSAL)).encode())]
    await send({"type": "http.response.start", "status": 403, "headers": headers})
    await send({"type": "http.response.body", "body": _REFUSAL})


def _attach_signatures(send: Send, store: SignatureStore) -> Send:
    """A ``send`` that buffers a GetFab reply and adds the stored verification record to its FAB."""
    start: ASGIMessage = {}
    body = bytearray()

    async def wrapped(message: ASGIMessage) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            return
        if message["type"] != "http.response.body":
            await send(message)
            return
        body.extend(message.get("body", b""))
        if message.get("more_body", False):
            return
        payload = with_verifications(bytes(body), store) if start.get("status") == 200 else bytes(body)
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(payload)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    return wrapped


def with_verifications(payload: bytes, store: SignatureStore) -> bytes:
    """A serialized ``GetFabResponse`` with the server's signature record for its FAB, if there is one.

    ``valid_license`` is always set so that a SuperNode judges every FAB by its
    trusted entities (an unsigned FAB is then refused as unverified).
    """
    from flwr.proto.fab_pb2 import GetFabResponse

    reply = GetFabResponse()
    reply.ParseFromString(payload)
    reply.fab.verifications.update(store.load(reply.fab.hash_str))
    reply.fab.verifications[VALID_MARKER] = reply.fab.verifications.get(VALID_MARKER) or "Valid"
    return reply.SerializeToString()


def _log_to_stderr() -> None:
    """This module's messages to stderr without echoing Flower's own loggers a second time."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)
    LOG.propagate = False


def _bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket, as uvicorn would bind it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def _own_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Split AUREON's options from the ``flower-superlink`` arguments that follow them."""
    parser = argparse.ArgumentParser(prog="python -m aureon.launch.superlink_process", add_help=False)
    parser.add_argument("--public-host", required=True)
    parser.add_argument("--public-port", type=int, required=True)
    parser.add_argument("--fab-signatures", type=Path, default=None)
    return parser.parse_known_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Parse Flower's arguments with Flower's parser, then serve its app on the two sockets."""
    import uvicorn
    from flwr.supercore.http_logging import get_uvicorn_log_config
    from flwr.supercore.logger import console_handler
    from flwr.superlink.cli.flower_superlink import (
        SuperLinkLifespan,
        _parse_superlink_lifespan_config,
    )
    from flwr.superlink.main import create_app

    own, flower_argv = _own_args(sys.argv[1:] if argv is None else argv)
    for name in _LEGACY_GRPC_SWITCHES:
        os.environ.pop(name, None)
    sys.argv = ["flower-superlink", *flower_argv]
    config = _parse_superlink_lifespan_config()
    if own.public_port == config.port:
        raise SystemExit(f"--public-port {own.public_port} must differ from the Control API port {config.port}")
    signatures = None if own.fab_signatures is None else SignatureStore(own.fab_signatures)
    app = FleetOnlyGate(create_app(config, SuperLinkLifespan), control_port=config.port, signatures=signatures)
    sockets = [_bind(config.host, config.port), _bind(own.public_host, own.public_port)]
    _log_to_stderr()
    LOG.info(
        "Control, Runtime and Fleet APIs on %s:%d; Fleet API only on %s:%d",
        config.host,
        config.port,
        own.public_host,
        own.public_port,
    )
    server_config = uvicorn.Config(
        app=app,
        interface="asgi3",
        access_log=True,
        log_config=get_uvicorn_log_config(console_handler.level),
        ssl_keyfile=config.ssl_keyfile,
        ssl_certfile=config.ssl_certfile,
        workers=1,
    )
    uvicorn.Server(server_config).run(sockets=sockets)


if __name__ == "__main__":
    main()
