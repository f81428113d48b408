"""Audit a finished run: score its canaries with the final model, bound epsilon, record it in results.json.

The score of a canary is the final global model's cross-entropy on the canary's
(wrong) label: low for a canary the model trained on and memorised. The
auditor guesses "in" for the ``k_plus`` lowest losses and "out" for the
``k_minus`` highest (both counts fixed in ``audit`` before the run), and
``aureon.privacy.audit`` turns the correct guesses into an epsilon lower bound.
With ``audit.kind=canary_clients`` each canary is a client, scored by the mean
loss over its examples, and the bound is checked against the client-level
guarantee only (a sample-level one says nothing of a whole client's data).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from aureon.config import AureonConfig
from aureon.exceptions import RunFailed
from aureon.features import prepare_dataset, take_rows
from aureon.files import atomic_write_text
from aureon.model_compression.model_io import load_into, load_state_file
from aureon.models import build_model
from aureon.privacy.audit import AuditResult, audit
from aureon.privacy.canaries import RECORD_FILE, CanaryPlan, plan_client_canaries
from aureon.privacy.canary_clients import KIND as CANARY_CLIENTS
from aureon.privacy.canary_clients import CanaryClientPlan, client_scores, federation_record

METHOD = "one-run canary audit (Steinke, Nasr and Jagielski, NeurIPS 2023)"
SCORE = "the final global model's cross-entropy on the canary's wrong label (low: guessed in)"
CLIENT_SCORE = (
    "the final global model's mean cross-entropy over the canary client's examples, on its one wrong label "
    "(low: guessed in)"
)
Plan = CanaryPlan | CanaryClientPlan
DELTA_WITHOUT_DP = 1e-5  # the delta a run without DP is audited at, unless audit.delta says otherwise


def run_canaries(config: AureonConfig) -> Plan:
    """The canaries the clients of a run with ``config`` add (the same plan every client computes).

    For canary clients, ``config.num_clients`` already counts the included ones
    (``canary_clients.with_canary_clients``).
    """
    dataset = prepare_dataset(config.dataset, config.seed, config.features)
    return plan_client_canaries(
        config.audit, labels=dataset.y_train, num_classes=dataset.num_classes, num_partitions=config.num_clients
    )


def record_canaries(run_dir: Path, config: AureonConfig, plan: Plan) -> Path:
    """Write which canaries exist and which were included (``canaries.json``) before training starts."""
    document = {
        "kind": config.audit.kind,
        "seed": config.audit.seed,
        "num_clients": config.num_clients,
        **({"examples_per_canary": config.audit.examples_per_canary} if config.audit.kind == CANARY_CLIENTS else {}),
        **plan.to_json(),
    }
    return atomic_write_text(Path(run_dir) / RECORD_FILE, json.dumps(document))


@torch.no_grad()
def canary_losses(
    model: nn.Module, x: npt.NDArray[Any], labels: npt.NDArray[np.int64], *, batch_size: int
) -> npt.NDArray[np.float64]:
    """Each example's cross-entropy under ``model`` (evaluation mode)."""
    model.eval()
    losses = []
    for start in range(0, len(x), batch_size):
        xb = torch.as_tensor(np.ascontiguousarray(x[start : start + batch_size]), dtype=torch.float32)
        yb = torch.as_tensor(labels[start : start + batch_size], dtype=torch.long)
        losses.append(nn.functional.cross_entropy(model(xb), yb, reduction="none").double().numpy())
    return np.concatenate(losses) if losses else np.zeros(0, dtype=np.float64)


def score_canaries(config: AureonConfig, run_dir: Path, plan: Plan) -> npt.NDArray[np.float64]:
    """The loss of the run's final model (``model.pt``) on every canary, included or not.

    A canary client's loss is the mean over its examples, each on the client's wrong label.
    """
    dataset = prepare_dataset(config.dataset, config.seed, config.features)
    model = build_model(
        config.model, input_shape=dataset.input_shape, num_classes=dataset.num_classes, seed=config.seed
    )
    path = Path(run_dir) / "model.pt"
    load_into(model, load_state_file(path), path)
    if isinstance(plan, CanaryClientPlan):
        per_example = np.repeat(plan.labels, plan.rows.shape[1])
        losses = canary_losses(
            model,
            take_rows(dataset.x_train, plan.rows.ravel()),
            per_example,
            batch_size=config.train.eval_batch_size,
        )
        return client_scores(losses, plan)
    return canary_losses(
        model, take_rows(dataset.x_train, plan.rows), plan.labels, batch_size=config.train.eval_batch_size
    )


def audit_delta(config: AureonConfig) -> float:
    """The delta of the claim under test: ``audit.delta``, else the run's (sample-level first), else 1e-5."""
    if config.audit.delta is not None:
        return config.audit.delta
    dp_sgd, client_level = config.privacy.dp_sgd(), config.privacy.client_level()
    if config.audit.kind == CANARY_CLIENTS:
        return DELTA_WITHOUT_DP if client_level is None else client_level.target_delta
    if dp_sgd is not None:
        return dp_sgd.target_delta
    return DELTA_WITHOUT_DP if client_level is None else client_level.target_delta


def audit_losses(config: AureonConfig, plan: Plan, losses: npt.NDArray[np.float64]) -> AuditResult:
    """The audit of ``losses`` (one per canary of ``plan``) with the guesses ``config.audit`` fixed."""
    k_plus, k_minus = config.audit.guesses()
    return audit(
        -losses,
        plan.included,
        k_plus=k_plus,
        k_minus=k_minus,
        delta=audit_delta(config),
        confidence=config.audit.confidence,
    )


def reported_claims(results: dict[str, Any], *, unit: str = "example") -> list[dict[str, Any]]:
    """Each DP guarantee results.json states: its kind, the epsilon the run reported under it, its delta.

    A canary example is one example of one client, so both a sample-level and a
    client-level guarantee cover it; the audit is checked against each. A canary
    client (``unit="client"``) is covered by the client-level guarantee only.
    """
    privacy = results.get("privacy") or {}
    sample_epsilon = (results.get("final") or {}).get("epsilon_max")
    client_level = privacy.get("client_level")
    if isinstance(client_level, dict):
        claims = [
            {
                "guarantee": str(client_level.get("kind")),
                "epsilon": client_level.get("epsilon_spent"),
                "delta": client_level.get("delta"),
            }
        ]
        sample = privacy.get("sample_level")
        if unit == "example" and isinstance(sample, dict) and sample.get("kind", "none") != "none":
            claims.append({"guarantee": str(sample["kind"]), "epsilon": sample_epsilon, "delta": sample.get("delta")})
        return [claim for claim in claims if claim["epsilon"] is not None]
    if unit != "example" or privacy.get("kind", "none") == "none" or sample_epsilon is None:
        return []
    return [{"guarantee": str(privacy["kind"]), "epsilon": sample_epsilon, "delta": privacy.get("delta")}]


def audit_block(
    config: AureonConfig, result: AuditResult, results: dict[str, Any], *, plan: Plan | None = None
) -> dict[str, Any]:
    """results.json's ``audit``: the bound next to the epsilon the run reported, and the guarantee it quotes.

    ``reported_epsilon`` is the smallest epsilon among the run's guarantees (the
    strongest claim a canary enjoys); ``claims`` lists each.
    """
    clients = config.audit.kind == CANARY_CLIENTS
    claims = reported_claims(results, unit="client" if clients else "example")
    strongest = min(claims, key=lambda claim: float(claim["epsilon"])) if claims else None
    return {
        "method": METHOD,
        "unit": "client" if clients else "example",
        "kind": config.audit.kind,
        "canary_kind": config.audit.kind,
        "seed": config.audit.seed,
        "score": CLIENT_SCORE if clients else SCORE,
        "guarantee": "none" if strongest is None else strongest["guarantee"],
        "reported_epsilon": None if strongest is None else strongest["epsilon"],
        "claims": claims,
        **result.to_json(),
        **(
            {"examples_per_canary": config.audit.examples_per_canary, "federation": federation_record(config, plan)}
            if isinstance(plan, CanaryClientPlan)
            else {}
        ),
        "record": RECORD_FILE,
    }


def write_audit(run_dir: Path, block: dict[str, Any]) -> dict[str, Any]:
    """Add ``audit`` to the run's results.json (atomically); return the document written."""
    path = Path(run_dir) / "results.json"
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RunFailed(f"{path}: cannot read the run's results to add the audit ({error})") from None
    if not isinstance(results, dict):
        raise RunFailed(f"{path}: holds a {type(results).__name__}, expected a JSON object")
    results["audit"] = block
    atomic_write_text(path, json.dumps(results, indent=2, allow_nan=False))
    return results


def audit_run(config: AureonConfig, run_dir: Path, plan: Plan, results: dict[str, Any]) -> dict[str, Any]:
    """Audit the finished run in ``run_dir`` (its ``results``): score, guess, bound, and write ``audit``."""
    result = audit_losses(config, plan, score_canaries(config, run_dir, plan))
    return write_audit(run_dir, audit_block(config, result, results, plan=plan))
