"""``python -m server`` and ``python -m clients`` as functions: the deployment's lifecycle.

``serve`` starts a SuperLink (TLS and node authentication unless insecure;
its Control API on loopback only), registers the node keys, signs and submits
the run with AUREON's ServerApp, waits for the run's status and stops the
SuperLink, whatever happens in between.
``join`` runs one SuperNode in the foreground until it exits or is stopped.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aureon.config import AureonConfig
from aureon.exceptions import ConfigError
from aureon.launch.app_signing import SignatureStore, sign_app, snapshot_app
from aureon.launch.certs import CertificateError, DeploymentCerts
from aureon.launch.flwr_cli import submit_run, wait_for_run
from aureon.launch.processes import LaunchError, ManagedProcess
from aureon.launch.run_config import compose_config
from aureon.launch.superlink import (
    CONNECTION,
    DEFAULT_CONTROL_PORT,
    SuperLinkSpec,
    register_nodes,
    start_superlink,
)
from aureon.launch.supernode import SuperNodeSpec, start_supernode_when_accepted

LOG = logging.getLogger(__name__)
LAUNCH_FILE = "launch.json"
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ServeOptions:
    """Where the coordinator listens, its certificates and how long it waits."""

    host: str = "127.0.0.1"
    port: int = 9092
    control_port: int = DEFAULT_CONTROL_PORT
    certs_dir: Path | None = None  # None: insecure
    node_keys: Sequence[Path] = ()
    node_auth: bool = True
    run_dir: Path | None = None
    app_dir: Path = REPO_ROOT
    timeout: float = 3600.0


def split_resume(overrides: Sequence[str]) -> tuple[list[str], Path | None]:
    """Separate ``resume=<run dir>`` from the other overrides."""
    rest, resume = [], None
    for item in overrides:
        if item.startswith("resume="):
            value = item.split("=", 1)[1].strip()
            resume = Path(value) if value and value != "null" else None
        else:
            rest.append(item)
    return rest, resume


def run_overrides(overrides: Sequence[str], *, resume: Path | None) -> list[str]:
    """The Hydra overrides of a run; a resume repeats the original run's overrides first."""
    if resume is None:
        return list(overrides)
    launch = resume / LAUNCH_FILE
    if not launch.is_file():
        raise LaunchError(
            f"resume={str(resume)!r} has no {LAUNCH_FILE}; expected a run directory made by `python -m server`"
        )
    original = json.loads(launch.read_text())["overrides"]
    return [*original, *overrides, f"resume={resume.resolve()}"]


def deployment_certs(certs_dir: Path) -> DeploymentCerts:
    """The server's TLS files and app-signing key, or an error saying how to make them."""
    certs = DeploymentCerts(Path(certs_dir))
    needed = (certs.ca_cert, certs.server_cert, certs.server_key, certs.app_signing_key)
    missing = [p for p in needed if not p.is_file()]
    if missing:
        raise CertificateError(
            f"--certs {str(certs_dir)!r} lacks {', '.join(p.name for p in missing)}; create them with "
            f"`python -m server certs --out {certs_dir} --hosts <addresses clients dial> --nodes <n>`"
        )
    return certs


def refuse_reproducible_noise(config: AureonConfig) -> None:
    """Deployment never runs with noise the server could regenerate (clients refuse it too)."""
    dp_sgd = config.privacy.dp_sgd()
    if dp_sgd is not None and dp_sgd.reproducible_noise:
        raise ConfigError(
            "privacy.reproducible_noise=true is for simulation benchmarks only: it derives every "
            "client's DP noise from the run seed, so the guarantee would not hold against this "
            "server; deployment refuses it"
        )


def serve(overrides: Sequence[str], options: ServeOptions) -> dict[str, Any]:
    """Run one deployment from start to finish; returns the run's results.json."""
    plain, resume = split_resume(overrides)
    full = run_overrides(plain, resume=resume)
    config = compose_config(full)  # fail on a bad override before any process starts
    refuse_reproducible_noise(config)
    run_dir = (resume or options.run_dir or Path("outputs") / "deploy" / time.strftime("%Y-%m-%d_%H-%M-%S")).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    if resume is None:
        (run_dir / LAUNCH_FILE).write_text(json.dumps({"overrides": plain}, indent=2))
    flwr_home = run_dir / "flwr" / f"launch-{time.strftime('%Y%m%d-%H%M%S')}-{time.monotonic_ns() % 10**6}"
    certs = None if options.certs_dir is None else deployment_certs(options.certs_dir)
    keys = list(options.node_keys) or ([] if certs is None else certs.node_public_keys())
    if (
        certs is not None
        and options.node_auth
        and len(keys) < (config.deployment.min_available_nodes or config.num_clients)
    ):
        raise LaunchError(
            f"node authentication needs a registered key per client: found {len(keys)} public keys "
            f"in {certs.out / 'nodes'}, the run waits for {config.deployment.min_available_nodes or config.num_clients}"
        )
    spec = SuperLinkSpec(
        host=options.host,
        port=options.port,
        control_port=options.control_port,
        flwr_home=flwr_home,
        certs=certs,
        node_auth=options.node_auth,
    )
    superlink = start_superlink(spec, cwd=run_dir)
    try:
        if certs is not None and options.node_auth:
            register_nodes(keys, flwr_home=flwr_home, cwd=options.app_dir)
        app_dir, signed = options.app_dir, None
        if certs is not None:  # sign a frozen copy: the working tree may change before `flwr run` reads it
            app_dir = snapshot_app(options.app_dir, flwr_home / "app")
            signed = sign_app(app_dir, key_path=certs.app_signing_key, store=SignatureStore(spec.signatures_dir))
        run_id = submit_run(
            app_dir,
            flwr_home=flwr_home,
            overrides=full,
            run_dir=run_dir,
            connection=CONNECTION,
            signed_fab_hash=signed,
        )
        LOG.warning("run %d submitted; outputs in %s; SuperLink log %s", run_id, run_dir, superlink.log_path)
        wait_for_run(run_id, flwr_home=flwr_home, cwd=options.app_dir, timeout=options.timeout)
    finally:
        superlink.stop()
    return json.loads((run_dir / "results.json").read_text())


def join(spec: SuperNodeSpec, *, cwd: Path) -> int:
    """Run a SuperNode until it exits or this process gets SIGINT/SIGTERM; returns its exit code."""
    node: ManagedProcess = start_supernode_when_accepted(spec, cwd=cwd)
    stop_requested = []

    def _stop(signum: int, _frame: object) -> None:
        stop_requested.append(signum)

    previous = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while node.alive() and not stop_requested:
            time.sleep(0.5)
        code = node.popen.poll()
        return 0 if code is None else int(code)
    finally:
        node.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
