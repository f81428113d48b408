"""``python -m server``: run the coordinator; ``python -m server certs``: make its certificates.

    python -m server certs --out certs --hosts 127.0.0.1,localhost --nodes 3
    python -m server --certs certs num_rounds=3 dataset=digits
    python -m server --certs certs resume=outputs/deploy/<run>

SuperNodes dial ``--host:--port`` (the Fleet API only); the Control API that
registers nodes and submits runs listens on ``127.0.0.1:--control-port``.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path

from aureon.cli import run_cli


def _certs(argv: list[str]) -> int:
    from aureon.launch.certs import generate_certs

    parser = argparse.ArgumentParser(
        prog="python -m server certs", description="Create a CA, a server certificate and node keys."
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for ca.crt, server.crt/key and nodes/")
    parser.add_argument(
        "--hosts", required=True, help="comma-separated IPs/DNS names clients dial, e.g. 127.0.0.1,localhost"
    )
    parser.add_argument("--nodes", type=int, default=0, help="how many node authentication key pairs to create")
    parser.add_argument("--valid-days", type=int, default=365)
    args = parser.parse_args(argv)
    files = generate_certs(out=args.out, hosts=args.hosts.split(","), nodes=args.nodes, valid_days=args.valid_days)
    print(
        f"CA {files.ca_cert}; server {files.server_cert} for {args.hosts}; app-signing key {files.app_signing_key}; "
        f"{args.nodes} node key pairs in {files.out / 'nodes'}"
    )
    print(
        f"Give each client {files.ca_cert.name} and {files.trusted_entities.name}; keep ca.key, server.key and "
        f"{files.app_signing_key.name} on the server. Clients make their own node keys (`python -m clients keygen`) "
        "and send only the .pub file, which goes into nodes/."
    )
    return 0


def _serve(argv: list[str]) -> int:
    from aureon.launch.deploy import ServeOptions, serve
    from aureon.launch.superlink import DEFAULT_CONTROL_PORT, INSECURE_WARNING

    parser = argparse.ArgumentParser(
        prog="python -m server", description="Start a SuperLink and run AUREON's ServerApp on it."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for all interfaces)")
    parser.add_argument("--port", type=int, default=9092, help="the port SuperNodes dial (Fleet API only)")
    parser.add_argument(
        "--control-port",
        type=int,
        default=DEFAULT_CONTROL_PORT,
        help="Control API port, on 127.0.0.1 only (reach it remotely through an SSH tunnel)",
    )
    parser.add_argument("--certs", type=Path, default=Path("certs"), help="folder made by `python -m server certs`")
    parser.add_argument(
        "--node-keys",
        type=Path,
        nargs="*",
        default=[],
        help="node public keys to register (default: <certs>/nodes/*.pub)",
    )
    parser.add_argument("--no-node-auth", action="store_true", help="TLS but no node authentication")
    parser.add_argument(
        "--insecure", action="store_true", help="no TLS, no node authentication (local experiments only)"
    )
    parser.add_argument("--run-dir", type=Path, default=None)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the run to finish")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. num_rounds=3 resume=<run dir>")
    args = parser.parse_args(argv)
    if args.insecure:
        print(INSECURE_WARNING, file=sys.stderr)
    options = ServeOptions(
        host=args.host,
        port=args.port,
        control_port=args.control_port,
        certs_dir=None if args.insecure else args.certs,
        node_keys=args.node_keys,
        node_auth=not args.no_node_auth,
        run_dir=args.run_dir,
        timeout=args.timeout,
    )
    results = serve(args.overrides, options)
    final = results.get("final") or {}
    print(json.dumps({"rounds_completed": results.get("rounds_completed"), "final": final}, indent=2))
    return 0


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    """Turn SIGTERM into SystemExit so the SuperLink is stopped on the way out."""
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if argv[:1] == ["certs"]:
        return _certs(argv[1:])
    return _serve(argv)


if __name__ == "__main__":
    sys.exit(run_cli(main))
