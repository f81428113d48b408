"""Batch prediction of a table file with a tabular run: the rows come back with the served answers beside them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from aureon.config.serving import ServingConfig
from aureon.serving.app import build_app
from aureon.serving.loading import load_served_model
from tests.features.tabular.client_files import TARGET
from tests.serving.table_runs import classification_run, json_rows, sites_frame

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sites_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return classification_run(tmp_path_factory.mktemp("table-batch"))


def _predict(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simulations.predict", *args, "progress=false"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _file_rows() -> pd.DataFrame:
    """Rows as a user's file holds them: an id, the label, gaps, and an unseen category."""
    frame = sites_frame().iloc[:130].reset_index(drop=True)
    frame.loc[7, "site"] = "west"
    frame.insert(0, "id", np.arange(len(frame)) * 10)
    return frame


def _served(run: Path, frame: pd.DataFrame) -> dict:
    features = frame.drop(columns=["id", TARGET])
    with TestClient(build_app(load_served_model(run), ServingConfig(max_rows=1000))) as client:
        got = client.post("/predict", json={"rows": json_rows(features)})
    assert got.status_code == 200, got.text
    return got.json()


@pytest.mark.parametrize(
    ("suffix_in", "suffix_out", "batch"),
    [(".csv", ".csv", 1000), (".parquet", ".parquet", 1000), (".csv", ".parquet", 1000), (".parquet", ".csv", 32)],
)
def test_a_table_file_is_predicted_like_the_server_answers(
    tmp_path: Path, sites_run: Path, suffix_in: str, suffix_out: str, batch: int
) -> None:
    frame = _file_rows()
    source, output = tmp_path / f"rows{suffix_in}", tmp_path / f"out{suffix_out}"
    if suffix_in == ".csv":
        frame.to_csv(source, index=False)
    else:
        frame.to_parquet(source, index=False)
    done = _predict(f"run_dir={sites_run}", f"input={source}", f"output={output}", f"serving.predict_batch={batch}")
    assert done.returncode == 0, done.stderr[-2000:]
    written = pd.read_csv(output) if suffix_out == ".csv" else pd.read_parquet(output)

    served = _served(sites_run, frame)  # all 130 rows in one request: one forward pass
    classes = served["classes"]
    assert list(written.columns) == [*frame.columns, "prediction", *(f"p_{c}" for c in classes)]
    pd.testing.assert_frame_equal(written[frame.columns], frame, check_dtype=False)  # the rows, unchanged
    assert written["prediction"].astype(str).tolist() == served["predictions"]
    # float32 probabilities; CSV text holds each one's shortest decimal, which reads back to that float32
    probabilities = written[[f"p_{c}" for c in classes]].to_numpy().astype(np.float32)
    expected = np.array(served["probabilities"]).astype(np.float32)
    if batch >= len(frame):  # the same rows in one forward pass: the same numbers
        np.testing.assert_array_equal(probabilities, expected)
    else:  # BLAS sums a 2-row tail batch in another order than a 130-row one: the last float32 bit may differ
        np.testing.assert_allclose(probabilities, expected, rtol=0, atol=2e-7)


def test_a_bad_value_names_its_row_and_column_and_writes_nothing(tmp_path: Path, sites_run: Path) -> None:
    frame = _file_rows()
    frame["f2"] = frame["f2"].astype(object)
    frame.loc[70, "f2"] = "n/a?"
    source, output = tmp_path / "rows.csv", tmp_path / "out.csv"
    frame.to_csv(source, index=False)
    done = _predict(f"run_dir={sites_run}", f"input={source}", f"output={output}", "serving.predict_batch=32")
    assert done.returncode == 2
    assert "column 'f2'" in done.stderr and "row 71" in done.stderr and "'n/a?'" in done.stderr, done.stderr
    assert not output.exists() and list(tmp_path.iterdir()) == [source]  # no output, no temporary left

    missing = tmp_path / "no_site.csv"
    _file_rows().drop(columns=["site"]).to_csv(missing, index=False)
    done = _predict(f"run_dir={sites_run}", f"input={missing}", f"output={output}")
    assert done.returncode == 2 and "['site']" in done.stderr and "not in the file" in done.stderr, done.stderr
    assert not output.exists()
