"""``python -m clients``: run one client (a Flower SuperNode running AUREON's ClientApp).

    python -m clients --partition-id 0 --num-partitions 3 --server 127.0.0.1:9092 \\
        --root-certificates certs/ca.crt --auth-key certs/nodes/node-0
    python -m clients --partition-id 0 --num-partitions 3 --server 10.0.0.5:9092 ... data.path=/data/mnist
    python -m clients keygen --out keys      # this node's key pair; send only keys/node.pub to the server
    python -m clients ledger show --state-dir DIR     # epsilon spent on this client's data
    python -m clients ledger reset --state-dir DIR    # forget it, on purpose

The privacy floor (``--max-epsilon``, ``--max-delta``, DP required unless
``--allow-no-dp``) is this client's own: the server cannot lower it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from aureon.cli import run_cli

ALIASES = {"data.": "dataset."}


def _override(item: str) -> str:
    for short, full in ALIASES.items():
        if item.startswith(short):
            return full + item[len(short) :]
    return item


def _keygen(argv: list[str]) -> int:
    """Make this node's authentication key pair here, so the private key never leaves the node."""
    from aureon.launch.certs import keygen

    parser = argparse.ArgumentParser(prog="python -m clients keygen", description="Create this node's key pair.")
    parser.add_argument("--out", type=Path, required=True, help="folder for <name> (private, 0600) and <name>.pub")
    parser.add_argument("--name", default="node", help="file name of the key pair (default: node)")
    parser.add_argument("--force", action="store_true", help="replace an existing key pair")
    args = parser.parse_args(argv)
    node = keygen(args.out, name=args.name, overwrite=args.force)
    print(f"private key {node.private_key} (keep it here; pass it as --auth-key)")
    print(f"public key {node.public_key}: send it to the server's operator, who puts it in <certs>/nodes/")
    return 0


def _ledger(argv: list[str]) -> int:
    """Show or reset the privacy ledger of a client state directory."""
    from aureon.privacy.ledger import LedgerStore, describe

    parser = argparse.ArgumentParser(prog="python -m clients ledger", description="This client's privacy ledger.")
    parser.add_argument("action", choices=["show", "reset"])
    parser.add_argument("--state-dir", type=Path, required=True, help="the client's --state-dir")
    parser.add_argument("--data", default=None, help="reset: only this dataset's ledger (its fingerprint, from `show`)")
    parser.add_argument("--delta", type=float, default=1e-5, help="delta at which epsilon is shown (default 1e-5)")
    parser.add_argument("--accountant", choices=["rdp", "prv", "gdp"], default="rdp")
    args = parser.parse_args(argv)
    store = LedgerStore(args.state_dir.resolve())
    if args.action == "show":
        ledgers = store.datasets()
        for ledger in ledgers.values():
            print(describe(ledger, delta=args.delta, accountant=args.accountant))
        if not ledgers:
            print(f"{store.path}: no privacy spent yet")
        return 0
    forgotten = store.reset(args.data)
    for ledger in forgotten:
        print(f"forgot {describe(ledger, delta=args.delta, accountant=args.accountant)}")
    if not forgotten:
        print(f"{store.path}: nothing readable to forget; an empty ledger was started")
    print(f"{store.path}: the next run on this data starts from epsilon 0; the reset is recorded there")
    return 0


def _privacy_floor(args: argparse.Namespace) -> dict[str, bool | float]:
    """The floor from the command line, checked, as node-config entries."""
    from aureon.privacy.floor import PrivacyFloor

    floor = PrivacyFloor(
        require_dp=not args.allow_no_dp,
        max_epsilon=args.max_epsilon,
        max_delta=args.max_delta,
        deployment=True,
    )
    floor.validate()
    return floor.node_config()


def main(argv: list[str]) -> int:
    if argv[:1] == ["keygen"]:
        return _keygen(argv[1:])
    if argv[:1] == ["ledger"]:
        return _ledger(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m clients", description="Join a federation as one client.")
    parser.add_argument("--partition-id", type=int, required=True)
    parser.add_argument("--num-partitions", type=int, required=True)
    parser.add_argument("--server", required=True, help="the SuperLink's HOST:PORT")
    parser.add_argument(
        "--root-certificates", type=Path, default=Path("certs/ca.crt"), help="the deployment's CA certificate"
    )
    parser.add_argument("--auth-key", type=Path, default=None, help="this node's private key (from `keygen`)")
    parser.add_argument(
        "--trusted-entities",
        type=Path,
        default=Path("certs/trusted-entities.yaml"),
        help="the server's app-signing public key; only apps it signed run here",
    )
    parser.add_argument("--insecure", action="store_true", help="no TLS (local experiments only)")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where the privacy ledger and last reply are kept (default: ~/.local/share/aureon/client-<id>)",
    )
    parser.add_argument(
        "--max-epsilon",
        type=float,
        default=8.0,
        help="the most epsilon this client spends on its data, over every run (default 8)",
    )
    parser.add_argument(
        "--max-delta", type=float, default=1e-5, help="the largest delta this client accepts (default 1e-5)"
    )
    parser.add_argument("--allow-no-dp", action="store_true", help="accept runs without DP-SGD (privacy=none)")
    parser.add_argument(
        "--clientappio-port", type=int, default=None, help="local port for the ClientApp runtime (default: a free one)"
    )
    parser.add_argument(
        "--home", type=Path, default=None, help="FLWR_HOME of this client (default: <state-dir>/flwr-home)"
    )
    parser.add_argument("overrides", nargs="*", help="this client's Hydra overrides, e.g. data.path=/data/mnist")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    floor = _privacy_floor(args)  # a bad floor is reported before Flower and the launchers load
    from aureon.federated.client_state import default_state_dir
    from aureon.launch.deploy import join
    from aureon.launch.processes import free_port
    from aureon.launch.superlink import INSECURE_WARNING
    from aureon.launch.supernode import SuperNodeSpec

    if args.insecure:
        print(INSECURE_WARNING, file=sys.stderr)
    state_dir = (args.state_dir or default_state_dir(args.partition_id)).resolve()
    spec = SuperNodeSpec(
        superlink=args.server,
        partition_id=args.partition_id,
        num_partitions=args.num_partitions,
        flwr_home=(args.home or state_dir / "flwr-home").resolve(),
        state_dir=state_dir,
        clientappio_port=args.clientappio_port or free_port(),
        root_certificates=None if args.insecure else args.root_certificates,
        private_key=None if args.insecure else args.auth_key,
        trusted_entities=None if args.insecure else args.trusted_entities,
        overrides=[_override(o) for o in args.overrides],
        privacy_floor=floor,
    )
    log_path = spec.flwr_home / f"supernode-{args.partition_id}.log"
    print(f"client {args.partition_id}/{args.num_partitions} -> {args.server}; log: {log_path}")
    return join(spec, cwd=Path.cwd())


if __name__ == "__main__":
    sys.exit(run_cli(main))
