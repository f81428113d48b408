"""Tabular feature engineering: AUREON (centralized and federated) beside autofeat and Featuretools.

On scikit-learn's breast cancer, wine and diabetes tables and mlxtend's Boston
housing table, with one train/test split per table (``dataset.test_fraction``,
seed 0, stratified for classes) shared by every system, and one downstream
model (standardize, then logistic regression for classes, ridge regression for
a numeric target): the features each system makes, the downstream held-out
score (accuracy, or R^2), the seconds it took to make them (fit on the training
rows, transform both splits) and its peak resident memory over that span.

Every system runs in a process of its own (benchmarks/_feature_worker.py), so
its peak memory is its own, under a wall-clock cap (the process group is
killed when it is hit) and a memory cap on its resident memory.

AUREON rows: features=generate (standardized columns plus up to
``--max-features`` generated ones), fitted centralized on the pooled training
rows and federated over 5 clients (IID: a random equal split; Dirichlet 0.5 over
the classes, or over target quintiles for a numeric target), the clients
answering in the worker with the functions a ClientApp runs.
autofeat 2.1 (``feateng_steps`` 2, 1 with ``--quick``) and Featuretools 1.31
(deep feature synthesis with numeric transform primitives, then its selection
of low-information, null and correlated features) run as their documentation
shows. They are tried on AUREON's pinned stack; where they cannot run there the
table says why, and with ``--peer-python`` they also run in an environment
holding the stack they declare (benchmarks/_peer_env.py builds it).

Scale row: a synthetic table shaped like the reference sheet's credit-card
transactions (``make_classification``: 284,807 rows, 30 numeric columns, 0.17%
positives; synthetic, not the real data): seconds and peak memory of AUREON's
federated fit over 10 clients, of autofeat and of Featuretools.

    python benchmarks/features.py [--quick] [--peer-python PY] [--scale-rows N] [--aureon-only] [--name NAME]

(``--datasets`` with no name and ``--aureon-only``: AUREON's scale row alone.)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import fmt  # noqa: E402
from benchmarks._report import machine, markdown_table, write  # noqa: E402

NAME = "features"
WORKER = Path(__file__).resolve().parent / "_feature_worker.py"
DATASETS = ("breast_cancer", "wine", "diabetes", "boston_housing")
PEERS = ("autofeat", "featuretools")
SEED = 0
CLIENTS = 5
SCALE_CLIENTS = 10
SCALE_ROWS = 284_807
SCALE_QUICK_ROWS = 28_481
SCALE_COLUMNS = 30
SCALE_POSITIVES = 0.0017
SCALE_TARGET_SECONDS = 3.2 * 60  # the reference sheet's AUREON figure
FEDERATED_TOLERANCE = 0.01  # "within 1 point" of accuracy or R^2
REGRESSION_STRATA = 5  # target quintiles stand in for classes when a Dirichlet split needs labels
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Split:
    """One table's split as every system receives it: numeric matrices, the training target, column names."""

    name: str
    task: str
    columns: list[str]
    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "x_train.npy", self.x_train)
        np.save(folder / "x_test.npy", self.x_test)
        np.save(folder / "y_train.npy", self.y_train)
        (folder / "columns.json").write_text(json.dumps({"columns": self.columns, "task": self.task}))
        return folder


@dataclass(frozen=True)
class System:
    """A row's maker: which system, in which interpreter, with which options."""

    label: str
    system: str
    python: str
    stack: str
    options: dict[str, Any]


# ---------------------------------------------------------------- inputs
def split_of(name: str) -> Split:
    """A registered dataset's table, split as AUREON splits it (numeric columns only: the peers take matrices)."""
    from aureon.config.registry import REGISTRY
    from aureon.data.tables import class_labels, load_table, split_table

    config = REGISTRY.options("dataset")[name].schema()
    train, test = split_table(load_table(config), test_fraction=config.test_fraction, seed=SEED)
    if train.categorical:
        raise ValueError(
            f"dataset {name!r}: categorical columns {list(train.categorical)}; this benchmark takes numeric"
        )
    (y_train, y_test), _ = class_labels(train, test)
    if train.task == "regression":
        y_train, y_test = train.target.to_numpy(np.float64), test.target.to_numpy(np.float64)
    return Split(
        name,
        train.task,
        list(train.numeric),
        train.features.to_numpy(np.float64),
        test.features.to_numpy(np.float64),
        y_train,
        y_test,
    )


def synthetic_split(rows: int) -> Split:
    """The reference sheet's shape, synthetic: ``rows`` x 30 numeric columns, 0.17% positives."""
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    x, y = make_classification(
        n_samples=rows,
        n_features=SCALE_COLUMNS,
        n_informative=10,
        n_redundant=10,
        weights=[1 - SCALE_POSITIVES],
        flip_y=0.0,
        random_state=SEED,
    )
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=SEED, stratify=y)
    columns = [f"V{i}" for i in range(1, SCALE_COLUMNS + 1)]
    return Split(f"synthetic {rows:,} x {SCALE_COLUMNS}", "classification", columns, x_train, x_test, y_train, y_test)


def client_rows(split: Split, *, clients: int, dirichlet: bool) -> list[list[int]]:
    """Each client's training rows: a random equal split, or Dirichlet(0.5) over classes/target quintiles."""
    from aureon.config.partition import DirichletPartitionConfig
    from aureon.data import partition_indices

    rng = np.random.default_rng(SEED)
    if not dirichlet:
        return [sorted(rows.tolist()) for rows in np.array_split(rng.permutation(len(split.y_train)), clients)]
    if split.task == "classification":
        labels = split.y_train.astype(np.int64)
    else:
        edges = np.quantile(split.y_train, np.linspace(0, 1, REGRESSION_STRATA + 1)[1:-1])
        labels = np.searchsorted(edges, split.y_train, side="right")
    partition = DirichletPartitionConfig(alpha=0.5, min_partition_size=10)
    return [sorted(rows.tolist()) for rows in partition_indices(labels, partition, clients, SEED)]


# ---------------------------------------------------------------- running one system
def stack_of(python: str) -> dict[str, str]:
    """The versions an interpreter would run the peers with."""
    probe = (
        "import json, platform\nfrom importlib.metadata import version, PackageNotFoundError\nout = {}\n"
        "for p in ('autofeat', 'featuretools', 'woodwork', 'numpy', 'pandas', 'scikit-learn', 'setuptools'):\n"
        "    try: out[p] = version(p)\n    except PackageNotFoundError: out[p] = None\n"
        "out['python'] = platform.python_version()\nprint(json.dumps(out))"
    )
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout))


def _tree_rss_bytes(pid: int) -> int:
    import psutil

    try:
        root = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
    except psutil.Error:
        return 0


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def run_worker(spec: dict[str, Any], *, python: str, cap_seconds: float, memory_cap_bytes: int) -> dict[str, Any]:
    """One system in its own process group; its figures, or why it stopped."""
    spec_path = Path(spec["outputs"]).with_suffix(".spec.json")
    spec_path.write_text(json.dumps(spec))
    stderr_path = spec_path.with_suffix(".stderr")
    started = time.monotonic()
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [python, str(WORKER), str(spec_path)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,  # its own process group: a kill reaches everything it started
        )
        while process.poll() is None:
            if time.monotonic() - started > cap_seconds:
                _kill_group(process)
                return {"status": "timeout", "why": f"did not finish in {cap_seconds / 60:g} min"}
            if _tree_rss_bytes(process.pid) > memory_cap_bytes:
                _kill_group(process)
                return {"status": "memory", "why": f"stopped at the {memory_cap_bytes / 2**30:.1f} GiB memory cap"}
            time.sleep(POLL_SECONDS)
    if process.returncode != 0:
        lines = [line for line in stderr_path.read_text(errors="replace").splitlines() if line.strip()]
        why = lines[-1].strip() if lines else f"exit status {process.returncode}"
        return {"status": "failed", "why": why, "stderr_tail": lines[-12:]}
    result = json.loads((Path(spec["outputs"]) / "result.json").read_text())
    return {"status": "ok", **result}


def downstream_score(x_train: np.ndarray, x_test: np.ndarray, split: Split) -> float:
    """The same model on every system's features: standardize, then logistic or ridge regression."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    finite_train = np.nan_to_num(x_train, nan=0.0, posinf=0.0, neginf=0.0)
    finite_test = np.nan_to_num(x_test, nan=0.0, posinf=0.0, neginf=0.0)
    head = LogisticRegression(max_iter=5000) if split.task == "classification" else Ridge(alpha=1.0)
    model = make_pipeline(StandardScaler(), head)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(finite_train, split.y_train)
        return float(model.score(finite_test, split.y_test))  # accuracy, or R^2


def measure(
    split: Split, system: System, *, work: Path, cap_seconds: float, memory_cap_bytes: int, score: bool
) -> dict[str, Any]:
    """One row: run ``system`` on ``split`` in its own process and score what it made."""
    slug = f"{split.name}-{system.label}".replace(" ", "_").replace(",", "").replace("/", "_")
    outputs = work / slug
    spec = {
        "system": system.system,
        "name": split.name,
        "inputs": str(work / f"input-{split.name}".replace(" ", "_")),
        "outputs": str(outputs),
        **system.options,
    }
    figures = run_worker(spec, python=system.python, cap_seconds=cap_seconds, memory_cap_bytes=memory_cap_bytes)
    row: dict[str, Any] = {
        "dataset": split.name,
        "task": split.task,
        "metric": "accuracy" if split.task == "classification" else "r2",
        "method": system.label,
        "system": system.system,
        "stack": system.stack,
        **figures,
    }
    if figures["status"] == "ok":
        x_train = np.load(outputs / "x_train.npy", mmap_mode="r")
        row["features"] = int(x_train.shape[1])
        if score:
            row["score"] = downstream_score(np.asarray(x_train), np.load(outputs / "x_test.npy"), split)
        print(
            f"  {split.name:24s} {system.label:48s} {row['features']:5d} feats  "
            f"{fmt(row.get('score'))}  {row['seconds']:8.2f} s  {row['peak_rss_mib']:8.1f} MiB",
            flush=True,
        )
    else:
        print(f"  {split.name:24s} {system.label:48s} {figures['status']}: {figures['why']}", flush=True)
    return row


# ---------------------------------------------------------------- which systems
def stack_label(stack: dict[str, str], system: str) -> str:
    packages = ["autofeat"] if system == "autofeat" else ["featuretools", "woodwork"]
    named = [f"{p} {stack.get(p)}" for p in packages] + [
        f"{p} {stack.get(p)}" for p in ("pandas", "numpy", "scikit-learn", "setuptools")
    ]
    return ", ".join(named)


def peer_systems(
    pinned: dict[str, str], peer: dict[str, str] | None, *, peer_python: str | None, options: dict[str, dict[str, Any]]
) -> list[System]:
    """Each peer on the pinned stack (if installed there) and, with --peer-python, in its own environment."""
    systems = []
    for name in PEERS:
        label = "autofeat" if name == "autofeat" else "Featuretools"
        if pinned.get(name) is not None:
            stack = stack_label(pinned, name)
            systems.append(System(f"{label} (pinned stack)", name, sys.executable, stack, options[name]))
        if peer_python is not None and peer is not None and peer.get(name) is not None:
            stack = stack_label(peer, name)
            systems.append(System(f"{label} (peer environment)", name, peer_python, stack, options[name]))
    return systems


def aureon_systems(split: Split, *, clients: int, max_features: int, centralized: bool) -> list[System]:
    here = sys.executable
    common = {"max_features": max_features, "seed": SEED}
    out = []
    if centralized:
        everyone = [list(range(len(split.y_train)))]
        out.append(System("AUREON centralized", "aureon", here, "pinned", {**common, "client_rows": everyone}))
    iid = client_rows(split, clients=clients, dirichlet=False)
    out.append(
        System(f"AUREON federated, {clients} clients IID", "aureon", here, "pinned", {**common, "client_rows": iid})
    )
    if centralized:
        skewed = client_rows(split, clients=clients, dirichlet=True)
        out.append(
            System(
                f"AUREON federated, {clients} clients Dirichlet 0.5",
                "aureon",
                here,
                "pinned",
                {**common, "client_rows": skewed},
            )
        )
    return out


# ---------------------------------------------------------------- targets and report
def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's aims, each with the figures it was judged on."""
    out: list[dict[str, Any]] = []
    ok = [r for r in rows if r["status"] == "ok" and "score" in r]
    for name in dict.fromkeys(r["dataset"] for r in rows if not r["dataset"].startswith("synthetic")):
        here = {r["method"]: r for r in ok if r["dataset"] == name}
        central = here.get("AUREON centralized")
        peers = [r for r in here.values() if r["system"] in PEERS]
        if central is not None and peers:
            best = max(peers, key=lambda r: r["score"])
            met = central["score"] >= best["score"] and central["seconds"] < best["seconds"]
            out.append(
                {
                    "target": f"{name}: AUREON centralized score >= the better peer, in less time",
                    "met": met,
                    "figures": f"AUREON {central['score']:.4f} in {central['seconds']:.2f} s; "
                    f"{best['method']} {best['score']:.4f} in {best['seconds']:.2f} s",
                }
            )
        else:
            out.append({"target": f"{name}: score and time against the peers", "met": None, "figures": "no peer ran"})
        for method, row in here.items():
            if central is not None and method.startswith("AUREON federated"):
                gap = central["score"] - row["score"]
                out.append(
                    {
                        "target": f"{name}: {method} within 1 point of centralized",
                        "met": gap <= FEDERATED_TOLERANCE,
                        "figures": f"centralized {central['score']:.4f}, federated {row['score']:.4f} "
                        f"(gap {gap * 100:+.2f} points)",
                    }
                )
    for row in rows:
        if row["dataset"].startswith("synthetic") and row["system"] == "aureon":
            seconds = row.get("seconds")
            out.append(
                {
                    "target": f"scale row ({row['dataset']}): AUREON federated under 3.2 min",
                    "met": None if seconds is None else seconds < SCALE_TARGET_SECONDS,
                    "figures": row.get("why") or f"{seconds:.1f} s",
                }
            )
    return out


def report(data: dict[str, Any]) -> str:
    rows = data["rows"]
    table = markdown_table(
        ["dataset", "system", "features", "held-out score", "seconds", "peak RSS MiB", "status"],
        [
            [
                r["dataset"],
                r["method"],
                r.get("features", "-"),
                "-" if "score" not in r else f"{r['score']:.4f} ({'acc' if r['metric'] == 'accuracy' else 'R^2'})",
                fmt(r.get("seconds"), ".2f"),
                fmt(r.get("peak_rss_mib"), ".0f"),
                "ok" if r["status"] == "ok" else f"{r['status']}: {r['why']}".replace("|", "/"),
            ]
            for r in rows
        ],
    )
    aims = markdown_table(
        ["target", "met", "figures"],
        [[t["target"], {True: "yes", False: "no", None: "-"}[t["met"]], t["figures"]] for t in data["targets"]],
    )
    stacks = sorted({(r["method"], r["stack"]) for r in rows if r["system"] in PEERS})
    notes = [
        "Same split (seed 0) and downstream model for every system: StandardScaler + LogisticRegression "
        "(classes) or Ridge(alpha=1) (numeric target), on the pinned stack; score on the held-out split.",
        "Each system runs in its own process; seconds and peak resident memory cover only the fit on the "
        "training rows and the transform of both splits (imports and data loading before it).",
        f"Caps per system: {data['cap_minutes']:g} min on the datasets and {data['scale_cap_minutes']:g} min on "
        f"the scale row (the process group is killed), {data['memory_cap_gib']:.1f} GiB resident memory.",
        "The scale row's table is synthetic (make_classification: 30 numeric columns, 0.17% positives), "
        "shaped like the reference sheet's credit-card data; its score is left out (accuracy at 0.17% "
        "positives says nothing).",
        f"AUREON: features=generate, at most {data['max_features']} generated features, each client scoring "
        f"the candidates on at most {data.get('score_rows') or 'all'} of its rows (features.score_rows, "
        "stratified by class); "
        f"autofeat: feateng_steps={data['autofeat_steps']}, max_gb={data['autofeat_max_gb']} "
        "(its documented limit: it subsamples the rows it engineers on beyond it).",
    ]
    notes += [f"{method}: {stack}." for method, stack in stacks]
    if data["quick"]:
        notes.append("--quick: autofeat with feateng_steps=1, shorter caps, the scale row at fewer rows.")
    if data.get("niced"):
        notes.append("Measured under `nice -n 19` beside other work: seconds are not clean.")
    return (
        "# Tabular feature engineering\n\n"
        + table
        + "\n## Targets\n\n"
        + aims
        + "\n"
        + "\n".join(f"- {n}" for n in notes)
        + "\n"
    )


# ---------------------------------------------------------------- main
def total_memory_bytes() -> int:
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def main(argv: Sequence[str] | None = None) -> None:
    from aureon.config.features import GenerateFeaturesConfig

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="autofeat at 1 step, short caps, a smaller scale row")
    parser.add_argument("--max-features", type=int, default=20, help="AUREON's budget of generated features")
    parser.add_argument("--peer-python", help="interpreter of the peers' own environment (benchmarks/_peer_env.py)")
    parser.add_argument("--scale-rows", type=int, help=f"rows of the synthetic table (default {SCALE_ROWS:,})")
    parser.add_argument("--skip-scale", action="store_true", help="leave out the synthetic scale row")
    parser.add_argument("--aureon-only", action="store_true", help="leave out the peers (autofeat, Featuretools)")
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS), choices=DATASETS, metavar="NAME")
    parser.add_argument("--cap-minutes", type=float, help="wall-clock cap per system on the scale row (default 10)")
    parser.add_argument("--memory-cap-gib", type=float, help="resident-memory cap per system (default 60%% of RAM)")
    parser.add_argument("--name", default=NAME, help="results file stem under benchmarks/results/")
    args = parser.parse_args(argv)
    for field in ("max_features", "scale_rows", "cap_minutes", "memory_cap_gib"):
        value = getattr(args, field)
        if value is not None and value <= 0:
            parser.error(f"--{field.replace('_', '-')} must be > 0, got {value}")
    if args.scale_rows is not None and args.scale_rows < 1000:
        parser.error(f"--scale-rows must be >= 1000 (it needs positives in both splits), got {args.scale_rows}")

    scale_rows = args.scale_rows or (SCALE_QUICK_ROWS if args.quick else SCALE_ROWS)
    scale_cap = 60 * (args.cap_minutes or (2.0 if args.quick else 10.0))
    dataset_cap = min(scale_cap, 120.0 if args.quick else 600.0)
    memory_cap = int((args.memory_cap_gib or 0.6 * total_memory_bytes() / 2**30) * 2**30)
    autofeat_max_gb = max(int(memory_cap / 2**30 / 4), 1)  # autofeat: intermediates take 2-3x its estimate
    steps = 1 if args.quick else 2
    options = {
        "autofeat": {"feateng_steps": steps, "max_gb": autofeat_max_gb},
        "featuretools": {},
    }
    pinned = stack_of(sys.executable)
    peer = stack_of(args.peer_python) if args.peer_python else None
    peers = [] if args.aureon_only else peer_systems(pinned, peer, peer_python=args.peer_python, options=options)
    broken: dict[str, str] = {}  # a peer that failed on a stack fails the same way on the next table

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="aureon-features-") as scratch:
        work = Path(scratch)
        jobs: list[tuple[Split, list[System], float, bool]] = []
        for name in args.datasets:
            split = split_of(name)
            raw = System("raw columns", "raw", sys.executable, "pinned", {})
            systems = [raw, *aureon_systems(split, clients=CLIENTS, max_features=args.max_features, centralized=True)]
            jobs.append((split, systems + peers, dataset_cap, True))
        if not args.skip_scale:
            split = synthetic_split(scale_rows)
            systems = aureon_systems(split, clients=SCALE_CLIENTS, max_features=args.max_features, centralized=False)
            jobs.append((split, systems + peers, scale_cap, False))
        for split, systems, cap, score in jobs:
            split.save(work / f"input-{split.name}".replace(" ", "_"))
            for system in systems:
                if system.label in broken:
                    rows.append(
                        {
                            "dataset": split.name,
                            "task": split.task,
                            "metric": "accuracy" if split.task == "classification" else "r2",
                            "method": system.label,
                            "system": system.system,
                            "stack": system.stack,
                            "status": "failed",
                            "why": f"not run: {broken[system.label]}",
                        }
                    )
                    continue
                row = measure(split, system, work=work, cap_seconds=cap, memory_cap_bytes=memory_cap, score=score)
                if row["status"] == "failed" and system.system in PEERS and system.python == sys.executable:
                    broken[system.label] = f"failed on {split.name} with {row['why']}"
                rows.append(row)

    data = {
        "machine": machine(),
        "pinned_stack": pinned,
        "peer_stack": peer,
        "quick": args.quick,
        "niced": os.nice(0) > 0,
        "max_features": args.max_features,
        "score_rows": GenerateFeaturesConfig().score_rows,
        "autofeat_steps": steps,
        "autofeat_max_gb": autofeat_max_gb,
        "cap_minutes": dataset_cap / 60,
        "scale_cap_minutes": scale_cap / 60,
        "memory_cap_gib": memory_cap / 2**30,
        "scale_rows": None if args.skip_scale else scale_rows,
        "rows": rows,
    }
    data["targets"] = targets(rows)
    markdown = report(data)
    json_path, md_path = write(args.name, data, markdown)
    print(markdown)
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
