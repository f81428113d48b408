"""Serving a tabular run: JSON rows go through the saved feature pipeline, answers match the run's own maths."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import websockets

from aureon.config.serving import ServingConfig
from aureon.exceptions import ModelFileError
from aureon.features.tabular.prepare import PIPELINE_DIR
from aureon.serving.loading import ServedModel, load_served_model
from tests.features.tabular.client_files import TARGET
from tests.serving.serving_helpers import serve
from tests.serving.table_runs import classification_run, json_rows, reference, regression_run, sites_frame

REPO = Path(__file__).resolve().parents[2]
CONFIG = ServingConfig(max_rows=50, max_body_bytes=200_000)


@pytest.fixture(scope="module")
def sites_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return classification_run(tmp_path_factory.mktemp("table-serving"))


@pytest.fixture(scope="module")
def diabetes_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return regression_run(tmp_path_factory.mktemp("table-regression"))


def _serve(model: ServedModel) -> Iterator[str]:
    yield from serve(model, CONFIG)


@pytest.fixture(scope="module")
def sites_url(sites_run: Path) -> Iterator[str]:
    yield from _serve(load_served_model(sites_run))


def request_rows() -> pd.DataFrame:
    """Held-back-style rows: gaps, a category the fit never saw, a row with nothing in it."""
    frame = sites_frame().drop(columns=[TARGET]).iloc[:24].reset_index(drop=True)
    frame.loc[3, "site"] = "west"  # unseen: the pipeline's "other" column
    frame.loc[5, :] = np.nan  # every value missing: imputed / its own category
    return frame


def test_classification_answers_equal_the_pipeline_and_model_run_here(sites_run: Path, sites_url: str) -> None:
    frame = request_rows()
    _, expected = reference(sites_run, frame, target=TARGET)
    classes = json.loads((sites_run / PIPELINE_DIR / "pipeline.json").read_text())["classes"]

    got = httpx.post(f"{sites_url}/predict", json={"rows": json_rows(frame)}, timeout=30)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["classes"] == classes
    np.testing.assert_array_equal(np.array(body["probabilities"]), expected)  # exactly, not approximately
    assert body["predictions"] == [classes[i] for i in expected.argmax(axis=1)]

    one = httpx.post(f"{sites_url}/predict", json={"row": json_rows(frame)[3]}, timeout=30).json()
    assert one["predictions"] == body["predictions"][3:4]

    async def over_websocket() -> dict:
        async with websockets.connect(f"{sites_url.replace('http', 'ws')}/ws") as ws:
            await ws.send(json.dumps({"id": "a", "rows": json_rows(frame)}))
            return json.loads(await ws.recv())

    answer = asyncio.run(over_websocket())
    assert answer["id"] == "a" and answer["predictions"] == body["predictions"]
    np.testing.assert_array_equal(np.array(answer["probabilities"]), expected)


def test_model_reports_the_input_columns_and_the_classes(sites_run: Path, sites_url: str) -> None:
    info = httpx.get(f"{sites_url}/model", timeout=30).json()
    assert info["task"] == "classification" and info["features"] == "onehot"
    assert info["classes"] == ["0", "1"] and info["num_classes"] == 2
    kinds = {c["name"]: c["kind"] for c in info["columns"]}
    assert kinds == {**{f"f{i}": "numeric" for i in range(6)}, "site": "categorical"}
    site = next(c for c in info["columns"] if c["name"] == "site")
    assert set(site["categories"]) >= {"north", "south", "east"}
    assert len(info["pipeline_checksum"]) == 64


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"rows": [{"f0": 1.0}, {"f9": 2.0}]}, 422, ["row 1", '"f9"', "unknown column", '"f0"']),
        ({"rows": [{"f1": "abc"}]}, 422, ["row 0", '"f1"', '"abc"', "expected a number"]),
        ({"rows": [{"f1": 2.0}, {"site": 3}]}, 422, ["row 1", '"site"', "3", "expected a category as a string"]),
        ({"rows": [{"f1": 2.0}, [1, 2]]}, 422, ["row 1", "JSON object", "a list"]),
        ({"rows": [{"f1": {"a": 1}}]}, 422, ["row 0", '"f1"', "an object"]),
        ({"rows": [{"f0": 1.0}] * 51}, 413, ["51 rows", "serving.max_rows=50"]),
        ({"rows": []}, 422, ["no rows"]),
        ({"rows": [{"f0": 1.0}, {"f4": 1e308}]}, 422, ["rows [1]", "too large"]),  # inf once scaled (std 0.014)
        ({"data": []}, 400, ['"rows"']),
    ],
)
def test_bad_rows_get_a_4xx_naming_the_row_column_and_value(sites_url: str, body, status, words) -> None:
    got = httpx.post(f"{sites_url}/predict", json=body, timeout=30)
    assert got.status_code == status, got.text
    message = got.json()["error"]
    for word in words:
        assert word in message, message


def test_non_finite_numbers_and_binary_bodies_are_refused(sites_url: str) -> None:
    got = httpx.post(
        f"{sites_url}/predict", content=b'{"rows": [{"f2": NaN}]}', headers={"content-type": "application/json"}
    )
    assert got.status_code == 422 and '"f2"' in got.json()["error"] and "finite" in got.json()["error"]
    raw = httpx.post(
        f"{sites_url}/predict",
        content=np.zeros(7, np.float32).tobytes(),
        headers={"content-type": "application/octet-stream", "x-shape": "1"},
    )
    assert raw.status_code == 415 and "application/json" in raw.json()["error"]


def test_regression_answers_are_in_the_targets_own_units(diabetes_run: Path) -> None:
    from aureon.config.dataset import DiabetesConfig
    from aureon.data.table_sources import read_diabetes

    frame = read_diabetes(DiabetesConfig()).drop(columns=["target"]).iloc[:40]
    _, expected = reference(diabetes_run, frame, target="target")
    model = load_served_model(diabetes_run)
    for url in _serve(model):
        info = httpx.get(f"{url}/model", timeout=30).json()
        assert info["task"] == "regression" and info["classes"] is None and info["num_classes"] == 1
        body = httpx.post(f"{url}/predict", json={"rows": json_rows(frame)}, timeout=30).json()
    got = np.array(body["predictions"])
    np.testing.assert_array_equal(got, expected)
    assert "probabilities" not in body
    assert 50 < got.mean() < 300  # the target's units (its mean is 152), not the standardized scale


def test_a_fresh_process_transforms_and_predicts_identically_without_the_training_stack(sites_run: Path) -> None:
    frame = request_rows()
    rows = json.dumps({"rows": json_rows(frame)})
    code = (
        "import json, sys\n"
        "from aureon.serving.loading import load_served_model\n"
        "from aureon.serving.table_inputs import TableInputs\n"
        f"model = load_served_model({str(sites_run)!r})\n"
        "inputs = TableInputs(model.table.pipeline, max_rows=100)\n"
        "features = inputs.parse_json(sys.stdin.read())\n"
        "answer = model.answer(model.logits(features))\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules} & {'opacus', 'flwr', 'ray', 'optuna'})\n"
        "print(json.dumps({'features': features.tolist(), 'answer': answer, 'loaded': loaded}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], input=rows, cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    fresh = json.loads(done.stdout)
    features, expected = reference(sites_run, frame, target=TARGET)
    np.testing.assert_array_equal(np.array(fresh["features"], dtype=np.float32), features)
    np.testing.assert_array_equal(np.array(fresh["answer"]["probabilities"]), expected)
    assert fresh["loaded"] == []  # the training stack (Flower, Opacus, Ray, Optuna) is not serving's to load


def test_loading_a_tabular_run_leaves_flower_unloaded(sites_run: Path) -> None:
    code = (
        "import sys\n"
        "from aureon.serving.loading import load_served_model\n"
        f"load_served_model({str(sites_run)!r})\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'opacus', 'flwr', 'ray', 'optuna'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_run_without_its_pipeline_or_with_an_edited_one_is_refused(tmp_path: Path, sites_run: Path) -> None:
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(sites_run, copy)
    scale = copy / PIPELINE_DIR / "scale.npy"
    np.save(scale, np.load(scale) * 2)
    with pytest.raises(ModelFileError, match="scale.npy"):
        load_served_model(copy)
    shutil.rmtree(copy / PIPELINE_DIR)
    with pytest.raises(ModelFileError, match="feature_pipeline/pipeline.json: missing"):
        load_served_model(copy)
