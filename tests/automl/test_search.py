"""The centralized search: it keeps its budget, beats the trivial model, and leaves a reloadable pipeline."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from aureon.automl.export import load_pipeline, save_pipeline
from aureon.automl.objective import score
from aureon.automl.search import run_table_search
from aureon.automl.space import build_pipeline
from aureon.data.tables import load_table
from aureon.exceptions import AureonError
from aureon.launch.run_config import compose_config

REPO = Path(__file__).resolve().parents[2]
BUDGET = 25.0
FAST = ["automl.families=[linear,knn,random_forest]", "automl.folds=3", "automl.live=false"]


@pytest.fixture(scope="module")
def wine_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, float]:
    config = compose_config(["dataset=wine", f"automl.time_budget={BUDGET}", *FAST])
    run_dir = tmp_path_factory.mktemp("wine_run")
    started = time.time()
    results = run_table_search(config, run_dir, started=started)
    return results, run_dir, time.time() - started


def test_search_ends_near_its_budget_and_beats_the_majority_class(wine_run: tuple[dict, Path, float]) -> None:
    results, run_dir, seconds = wine_run
    # Generous: the machine running the tests may be shared; the benchmark measures the real overrun.
    assert seconds <= BUDGET + 15, f"the search took {seconds:.1f} s for a {BUDGET:g} s budget"
    assert results["trials"]["complete"] >= 1
    assert results["holdout_score"] > results["baseline"]["holdout_score"] + 0.2
    assert results["cv_score"] > results["baseline"]["cv_score"] + 0.2
    written = json.loads((run_dir / "results.json").read_text())
    assert written["holdout_score"] == results["holdout_score"] and written["task"] == "classification"
    with open(run_dir / "leaderboard.csv") as handle:
        board = list(csv.DictReader(handle))
    assert len(board) == results["trials"]["total"]
    assert board[0]["state"] == "complete" and float(board[0]["cv_score"]) == pytest.approx(results["cv_score"])
    assert (run_dir / "optimization_history.png").read_bytes()[:4] == b"\x89PNG"


def test_the_saved_pipeline_predicts_the_same_in_a_fresh_process(wine_run: tuple[dict, Path, float]) -> None:
    results, run_dir, _ = wine_run
    config = compose_config(["dataset=wine"])
    table = load_table(config.dataset)
    _, x_test, _, y_test = train_test_split(
        table.features, table.target, test_size=0.2, random_state=config.seed, stratify=table.target
    )
    x_test.to_csv(run_dir / "x_test.csv", index=False)
    script = (
        "import sys, numpy as np, pandas as pd\n"
        "from aureon.automl.export import load_pipeline\n"
        "folder = sys.argv[1]\n"
        "pipeline = load_pipeline(folder)\n"
        "np.save(folder + '/predicted.npy', pipeline.predict(pd.read_csv(folder + '/x_test.csv')))\n"
    )
    subprocess.run([sys.executable, "-c", script, str(run_dir)], check=True, cwd=REPO, timeout=300)
    predicted = np.load(run_dir / "predicted.npy", allow_pickle=False)
    assert score("classification", y_test, predicted) == results["holdout_score"]
    np.testing.assert_array_equal(predicted, load_pipeline(run_dir).predict(x_test))


def test_an_mlp_pipeline_saves_its_weights_apart_and_reloads_identically(tmp_path: Path) -> None:
    config = compose_config(["dataset=diabetes"])
    table = load_table(config.dataset)
    params = {
        "family": "mlp",
        "impute": "mean",
        "scale": "standard",
        "width": 16,
        "depth": 2,
        "lr": 0.01,
        "epochs": 5,
        "batch_size": 32,
    }
    pipeline = build_pipeline(
        params, task="regression", numeric=table.numeric, categorical=table.categorical, seed=0
    ).fit(table.features, table.target)
    files = {p.name for p in save_pipeline(pipeline, tmp_path, meta={"task": "regression"})}
    assert files == {"best_pipeline.skops", "best_mlp.pt", "best_pipeline.json"}
    table.features.to_csv(tmp_path / "x.csv", index=False)
    script = (
        "import sys, numpy as np, pandas as pd\n"
        "from aureon.automl.export import load_pipeline\n"
        "folder = sys.argv[1]\n"
        "np.save(folder + '/p.npy', load_pipeline(folder).predict(pd.read_csv(folder + '/x.csv')))\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, cwd=REPO, timeout=300)
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), pipeline.predict(table.features))


def test_a_damaged_pipeline_file_is_refused(wine_run: tuple[dict, Path, float], tmp_path: Path) -> None:
    _, run_dir, _ = wine_run
    for name in ("best_pipeline.skops", "best_pipeline.json"):
        (tmp_path / name).write_bytes((run_dir / name).read_bytes())
    data = bytearray((tmp_path / "best_pipeline.skops").read_bytes())
    data[-40] ^= 0xFF
    (tmp_path / "best_pipeline.skops").write_bytes(bytes(data))
    with pytest.raises(AureonError, match="checksum does not match"):
        load_pipeline(tmp_path)


def test_crashing_trials_are_recorded_with_their_reason_and_the_study_goes_on(tmp_path: Path) -> None:
    config = compose_config(
        [
            "dataset=diabetes",
            "automl.families=[mlp]",
            "automl.space.mlp.lr=[1000.0,100000.0]",  # diverges on every trial
            "automl.space.mlp.epochs=[2,3]",
            "automl.space.mlp.width=[4,8]",
            "automl.n_trials=3",
            "automl.time_budget=120",
            *FAST[1:],
        ]
    )
    with pytest.raises(AureonError, match="no trial finished even one fold"):
        run_table_search(config, tmp_path)
    with open(tmp_path / "leaderboard.csv") as handle:
        board = list(csv.DictReader(handle))
    assert [row["state"] for row in board] == ["fail"] * 3  # all three ran: a failure did not end the study
    assert all("diverged" in row["reason"] for row in board)


def test_the_default_trials_respect_the_configured_families_and_ranges() -> None:
    from aureon.automl.space import default_trials

    config = compose_config(
        ["dataset=wine", "automl.families=[random_forest,svm]", "automl.space.random_forest.max_depth=[2,8]"]
    ).automl
    (forest,) = default_trials(config, task="classification")  # no gradient boosting: it is not searched
    assert forest["family"] == "random_forest"
    assert forest["random_forest.max_depth"] == 8  # the library default (30) clipped into the range
    assert forest["random_forest.max_features"] == "sqrt"


def test_the_best_partial_trial_stands_in_when_the_clock_stopped_every_trial() -> None:
    """A budget too short for any full cross-validation still yields a model, labelled as partial."""
    from optuna.distributions import FloatDistribution
    from optuna.trial import FrozenTrial, TrialState, create_trial

    from aureon.automl.objective import FOLDS_ATTR, PARTIAL_ATTR
    from aureon.automl.search import choose_best

    def stopped(score: float, folds: int) -> FrozenTrial:
        return create_trial(
            state=TrialState.PRUNED,
            params={"x": 0.5},
            distributions={"x": FloatDistribution(0, 1)},
            user_attrs={PARTIAL_ATTR: score, FOLDS_ATTR: folds},
        )

    pruned_by_median = create_trial(
        state=TrialState.PRUNED, params={"x": 0.1}, distributions={"x": FloatDistribution(0, 1)}
    )
    best, cv, reason = choose_best([stopped(0.61, 1), stopped(0.74, 2), pruned_by_median], n_folds=5)
    assert best is not None and best.user_attrs[PARTIAL_ATTR] == 0.74 and cv == 0.74
    assert reason is not None and "scored on 2 fold(s)" in reason and "all 5 folds" in reason

    finished = create_trial(
        state=TrialState.COMPLETE, value=0.70, params={"x": 0.2}, distributions={"x": FloatDistribution(0, 1)}
    )
    best, cv, reason = choose_best([stopped(0.9, 1), finished], n_folds=5)
    assert best is finished and cv == 0.70 and reason is None  # a finished trial always wins over a partial one

    assert choose_best([pruned_by_median], n_folds=5)[0] is None
