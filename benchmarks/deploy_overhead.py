"""What running as real processes costs: the same 5-client DP MNIST run, simulated and deployed.

Simulation: Flower's Simulation Engine in this process (Ray actors).
Deployment: ``python -m server`` (SuperLink with TLS and node authentication)
and 5 SuperNodes on this machine, all on loopback. Seconds per round come
from each run's results.json (server-side, configure_train to evaluation);
start-up (SuperLink, key registration, app install) is reported apart.

    python benchmarks/deploy_overhead.py [--mnist-path DIR] [--rounds 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import add_mnist_argument, mnist_overrides, run_aureon  # noqa: E402
from benchmarks._report import machine, markdown_table, write  # noqa: E402


def deployed(overrides: list[str], *, num_clients: int, timeout: float) -> dict[str, Any]:
    """Run ``overrides`` as a TLS + authenticated deployment on loopback; results.json plus wall time."""
    import json

    from aureon.launch.certs import generate_certs
    from aureon.launch.processes import free_port, quiet_flower_env, start_process
    from aureon.launch.supernode import SuperNodeSpec, start_supernode

    with tempfile.TemporaryDirectory(prefix="aureon-deploy-bench-") as tmp:
        root = Path(tmp)
        certs = generate_certs(out=root / "certs", hosts=["127.0.0.1"], nodes=num_clients)
        port, run_dir = free_port(), root / "run"
        repo = Path(__file__).resolve().parents[1]
        started = time.monotonic()
        server = start_process(
            "server",
            [
                sys.executable,
                "-m",
                "server",
                "--certs",
                str(certs.out),
                "--port",
                str(port),
                "--run-dir",
                str(run_dir),
                "--timeout",
                str(timeout),
                *overrides,
            ],
            env=quiet_flower_env(root / "driver-home"),
            cwd=repo,
            log_path=root / "server.log",
        )
        processes = [server]
        try:
            while not server.log_contains("submitted"):
                if not server.alive():
                    raise RuntimeError(f"server exited early:\n{server.log_tail()}")
                time.sleep(0.2)
            for index in range(num_clients):
                processes.append(
                    start_supernode(
                        SuperNodeSpec(
                            superlink=f"127.0.0.1:{port}",
                            partition_id=index,
                            num_partitions=num_clients,
                            flwr_home=root / f"node-{index}",
                            state_dir=root / f"state-{index}",
                            clientappio_port=free_port(),
                            root_certificates=certs.ca_cert,
                            private_key=certs.node(index).private_key,
                        ),
                        cwd=root,
                    )
                )
            server.popen.wait(timeout=timeout)
            if server.popen.returncode != 0:
                raise RuntimeError(f"deployment failed:\n{server.log_tail()}")
            results = json.loads((run_dir / "results.json").read_text())
            results["wall_seconds"] = time.monotonic() - started
            return results
        finally:
            for process in reversed(processes):
                process.stop(grace=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_mnist_argument(parser)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("extra", nargs="*", help="more Hydra overrides for both runs")
    args = parser.parse_args()
    data = mnist_overrides(args.mnist_path) if args.mnist_path.is_dir() else ["dataset=mnist_subset"]
    overrides = [*data, f"num_clients={args.clients}", f"num_rounds={args.rounds}", "privacy=dp_sgd", *args.extra]

    runs = {
        "simulation": run_aureon(overrides),
        "deployment": deployed(overrides, num_clients=args.clients, timeout=args.timeout),
    }
    figures = {}
    for mode, results in runs.items():
        seconds = [r["seconds"] for r in results["rounds"]]
        figures[mode] = {
            "seconds_per_round": mean(seconds),
            "round_seconds": seconds,
            "wall_seconds": results["wall_seconds"],
            "startup_seconds": results["wall_seconds"] - results["total_seconds"],
            "final_accuracy": results["final"]["test_accuracy"],
            "epsilon": results["final"]["epsilon_max"],
        }
    ratio = figures["deployment"]["seconds_per_round"] / figures["simulation"]["seconds_per_round"]
    data_out = {"overrides": overrides, "figures": figures, "deploy_over_sim_per_round": ratio, "machine": machine()}
    rows = [
        [
            mode,
            f"{f['seconds_per_round']:.2f}",
            f"{f['startup_seconds']:.1f}",
            f"{f['wall_seconds']:.1f}",
            f"{f['final_accuracy']:.4f}",
            f"{f['epsilon']:.3f}",
        ]
        for mode, f in figures.items()
    ]
    markdown = (
        f"# Deployment overhead ({args.clients} clients, {args.rounds} rounds, DP-SGD; "
        f"`{' '.join(o for o in overrides if not o.startswith('dataset.path='))}`)\n\n"
        + markdown_table(["mode", "s / round", "start-up s", "wall s", "final acc", "epsilon"], rows)
        + f"\nDeployment / simulation, seconds per round: **{ratio:.2f}x**.\n"
    )
    json_path, md_path = write("deploy_overhead", data_out, markdown)
    print(markdown)
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
