"""``python -m clients``: run one client (a Flower SuperNode running AUREON's ClientApp).

    python -m clients --partition-id 0 --num-partitions 3 --server 127.0.0.1:9092 \\
        --root-certificates certs/ca.crt --auth-key certs/nodes/node-0
    python -m clients --partition-id 0 --num-partitions 3 --server 10.0.0.5:9092 ... data.path=/data/mnist
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from aureon.exceptions import AureonError

ALIASES = {"data.": "dataset."}


def _override(item: str) -> str:
    for short, full in ALIASES.items():
        if item.startswith(short):
            return full + item[len(short):]
    return item


def main(argv: list[str] | None = None) -> int:
    from aureon.launch.deploy import join
    from aureon.launch.processes import free_port
    from aureon.launch.superlink import INSECURE_WARNING
    from aureon.launch.supernode import SuperNodeSpec

    parser = argparse.ArgumentParser(prog="python -m clients", description="Join a federation as one client.")
    parser.add_argument("--partition-id", type=int, required=True)
    parser.add_argument("--num-partitions", type=int, required=True)
    parser.add_argument("--server", required=True, help="the SuperLink's HOST:PORT")
    parser.add_argument("--root-certificates", type=Path, default=Path("certs/ca.crt"), help="the deployment's CA certificate")
    parser.add_argument("--auth-key", type=Path, default=None, help="this node's private key (nodes/node-<i>)")
    parser.add_argument("--insecure", action="store_true", help="no TLS (local experiments only)")
    parser.add_argument("--state-dir", type=Path, default=Path(".aureon-client-state"), help="where the privacy accountant is kept across restarts")
    parser.add_argument("--clientappio-port", type=int, default=None, help="local port for the ClientApp runtime (default: a free one)")
    parser.add_argument("--home", type=Path, default=None, help="FLWR_HOME of this client (default: <state-dir>/flwr-home)")
    parser.add_argument("overrides", nargs="*", help="this client's Hydra overrides, e.g. data.path=/data/mnist")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.insecure:
        print(INSECURE_WARNING, file=sys.stderr)
    state_dir = args.state_dir.resolve()
    spec = SuperNodeSpec(
        superlink=args.server,
        partition_id=args.partition_id,
        num_partitions=args.num_partitions,
        flwr_home=(args.home or state_dir / "flwr-home").resolve(),
        state_dir=state_dir,
        clientappio_port=args.clientappio_port or free_port(),
        root_certificates=None if args.insecure else args.root_certificates,
        private_key=None if args.insecure else args.auth_key,
        overrides=[_override(o) for o in args.overrides],
    )
    try:
        print(f"client {args.partition_id}/{args.num_partitions} -> {args.server}; log: {spec.flwr_home / f'supernode-{args.partition_id}.log'}")
        return join(spec, cwd=Path.cwd())
    except AureonError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
