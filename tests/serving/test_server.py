"""The prediction server on a real uvicorn: same answers as in process, clear refusals, Prometheus metrics."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from aureon.config import DigitsConfig
from aureon.config.serving import ServingConfig
from aureon.data import load_dataset
from aureon.serving.inputs import softmax
from aureon.serving.loading import ServedModel, load_served_model
from tests.serving.serving_helpers import serve

CONFIG = ServingConfig(max_rows=64, max_body_bytes=64_000, ws_idle_timeout_s=1.5, ws_send_timeout_s=1.0)


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return load_dataset(DigitsConfig(), 0).x_test[:40]


def _serve(model: ServedModel) -> Iterator[str]:
    yield from serve(model, CONFIG)


@pytest.fixture(scope="module", params=["cnn", "int8", "scattering"])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[str, ServedModel]]:
    run, kind = {
        "cnn": ("cnn_run", "full"),
        "int8": ("quantized_run", "quantize"),
        "scattering": ("scattering_run", "full"),
    }[request.param]
    model = load_served_model(request.getfixturevalue(run), model=kind)
    for url in _serve(model):
        yield url, model


def _expected(model: ServedModel, rows: np.ndarray) -> np.ndarray:
    return softmax(model.logits(rows))


def test_json_bytes_and_websocket_answers_equal_the_in_process_prediction(served, rows) -> None:
    url, model = served
    expected = _expected(model, rows)
    by_json = httpx.post(f"{url}/predict", json={"rows": rows.tolist()}).json()
    raw = httpx.post(
        f"{url}/predict",
        content=rows.astype("<f4").tobytes(),
        headers={"content-type": "application/octet-stream", "x-shape": ",".join(map(str, rows.shape))},
    ).json()

    async def over_ws() -> list[dict]:
        async with websockets.connect(url.replace("http", "ws") + "/ws") as ws:
            await ws.send(json.dumps({"id": "a", "rows": rows[:20].tolist()}))
            header = json.dumps({"id": "b", "shape": [20, *rows.shape[1:]], "dtype": "float32"}).encode()
            await ws.send(header + b"\n" + rows[20:].astype("<f4").tobytes())
            return [json.loads(await ws.recv()) for _ in range(2)]

    first, second = asyncio.run(over_ws())
    assert (first["id"], second["id"]) == ("a", "b")
    for answer in (by_json, raw, {k: first[k] + second[k] for k in ("predictions", "probabilities")}):
        np.testing.assert_allclose(answer["probabilities"], expected, atol=2e-5)
        assert answer["predictions"] == expected.argmax(axis=1).tolist()


def test_uint8_pixels_are_standardised_like_the_config_says(served) -> None:
    url, model = served
    pixels = np.random.default_rng(0).integers(0, 256, size=(3, *model.info.image_shape), dtype=np.uint8)
    answer = httpx.post(
        f"{url}/predict",
        content=pixels.tobytes(),
        headers={"content-type": "application/octet-stream", "x-shape": "3", "x-dtype": "uint8"},
    ).json()
    images = ((pixels / CONFIG.uint8_scale - CONFIG.uint8_mean) / CONFIG.uint8_std).astype(np.float32)
    np.testing.assert_allclose(answer["probabilities"], _expected(model, images), atol=2e-5)


def test_model_health_and_metrics(served, rows) -> None:
    url, model = served
    info = httpx.get(f"{url}/model").json()
    assert info["checksum"] == model.info.checksum and info["round"] == 3 and info["epsilon"] == 1.5
    assert httpx.get(f"{url}/health").json()["status"] == "ok"
    httpx.post(f"{url}/predict", json={"rows": rows[:2].tolist()})
    httpx.post(f"{url}/predict", content=b"{not json")
    families = {f.name: f for f in text_string_to_metric_families(httpx.get(f"{url}/metrics").text)}
    assert {"aureon_requests", "aureon_request_seconds", "aureon_batch_rows", "aureon_errors"} <= set(families)
    ok = [s for s in families["aureon_requests"].samples if s.labels.get("status") == "200"]
    assert sum(s.value for s in ok) >= 1
    refused = [s for s in families["aureon_errors"].samples if s.labels.get("reason") == "400"]
    assert sum(s.value for s in refused) >= 1


BAD_HTTP = [
    ({"content": b"{not json"}, 400, "not valid JSON"),
    ({"json": {"rows": [[0.0] * 10]}}, 422, "holds 10 values; expected 64"),
    ({"content": b'{"rows": [[NaN' + b", 0" * 63 + b"]]}"}, 422, "NaN or Inf"),
    ({"content": b'{"rows": [[1e999' + b", 0" * 63 + b"]]}"}, 422, "NaN or Inf"),
    ({"json": {"rows": [[0.0] * 64], "dtype": "int16"}}, 422, "dtype must be one of"),
    ({"json": {"rows": [[0.0] * 64] * 65}}, 413, "max_rows=64"),
    ({"content": b"x" * 70_000}, 413, "max_body_bytes=64000"),
    (
        {"content": b"\0" * 12, "headers": {"content-type": "application/octet-stream", "x-shape": "1"}},
        422,
        "needs 256 bytes",
    ),
    ({"content": b"\0" * 256, "headers": {"content-type": "application/octet-stream"}}, 400, "X-Shape header"),
    ({"content": b"a", "headers": {"content-type": "text/plain"}}, 415, "Content-Type must be"),
]


@pytest.fixture(scope="module")
def cnn_url(cnn_run: Path) -> Iterator[str]:
    yield from _serve(load_served_model(cnn_run))


def test_every_bad_request_gets_its_message_while_a_good_client_is_answered(cnn_url: str, rows) -> None:
    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=cnn_url, timeout=10) as client:
            stop = asyncio.Event()
            answered = 0

            async def good_client() -> None:
                nonlocal answered
                while not stop.is_set():
                    response = await client.post("/predict", json={"rows": rows[:4].tolist()})
                    assert response.status_code == 200
                    answered += 1

            good = asyncio.create_task(good_client())
            for kwargs, status, message in BAD_HTTP:
                response = await client.post("/predict", **kwargs)
                assert response.status_code == status, (kwargs, response.text)
                assert message in response.json()["error"]
            before = answered
            await slow_body(cnn_url)
            await bad_websockets(cnn_url, rows)
            await asyncio.sleep(0.2)
            stop.set()
            await good
            assert answered > before > 0  # the good client kept being answered throughout

    asyncio.run(scenario())


async def slow_body(url: str) -> None:
    """A client that announces a body and sends half of it: 408, not a stuck server."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), CONFIG.read_timeout_s + 5)
    assert b"408" in status
    writer.close()


async def bad_websockets(url: str, rows: np.ndarray) -> None:
    ws_url = url.replace("http", "ws") + "/ws"
    async with websockets.connect(ws_url) as ws:  # bad messages: an error answer, the connection stays
        await ws.send("{nope")
        assert "not valid JSON" in json.loads(await ws.recv())["error"]
        await ws.send(json.dumps({"id": 1, "rows": [[0.0] * 3]}))
        reply = json.loads(await ws.recv())
        assert reply["id"] == 1 and reply["status"] == 422
        await ws.send(b"no header line")
        assert "JSON header line" in json.loads(await ws.recv())["error"]
    async with websockets.connect(ws_url) as ws:  # silent (half-closed) client: closed with a reason
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), CONFIG.ws_idle_timeout_s + 5)
        assert closed.value.rcvd is not None and "ws_idle_timeout_s" in closed.value.rcvd.reason
    # a client that never reads its answers: closed once its answers cannot be delivered
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
    sock.connect((host, int(port)))
    sock.setblocking(False)
    async with websockets.connect(ws_url, sock=sock, max_queue=None) as ws:
        ws.transport.pause_reading()
        header = json.dumps({"shape": [32, *rows.shape[1:]], "dtype": "float32"}).encode()
        message = header + b"\n" + np.resize(rows, (32, *rows.shape[1:])).astype("<f4").tobytes()
        with contextlib.suppress(websockets.ConnectionClosed, TimeoutError):
            for _ in range(5000):
                await asyncio.wait_for(ws.send(message), 5)
        ws.transport.resume_reading()
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None
        reason = closed.value.rcvd.reason
        assert "ws_max_pending" in reason or "ws_send_timeout_s" in reason, reason


def test_a_run_folder_without_a_model_or_with_the_wrong_shape_is_one_line(tmp_path: Path, cnn_run: Path) -> None:
    from aureon.exceptions import ModelFileError

    (tmp_path / "config.yaml").write_text((cnn_run / "config.yaml").read_text())
    with pytest.raises(ModelFileError, match=r"model.pt: missing"):
        load_served_model(tmp_path)
    import torch

    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "model.pt")
    with pytest.raises(ModelFileError, match=r"model.pt: does not fit the SmallCNN"):
        load_served_model(tmp_path)
    (tmp_path / "model.pt").write_bytes((cnn_run / "model.pt").read_bytes() + b"x")
    (tmp_path / "results.json").write_text((cnn_run / "results.json").read_text())
    with pytest.raises(ModelFileError, match=r"checksum .* differs"):
        load_served_model(tmp_path)
