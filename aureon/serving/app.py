"""The prediction server as an ASGI app (starlette): /predict, /ws, /health, /metrics, /model.

Every refused request gets a 4xx (or a WebSocket close frame) whose message
names what was wrong; the work of one client never holds up another's:
bodies are read with a size and time limit, rows go to the micro-batcher,
and each WebSocket has a bounded queue of unread answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from aureon.config.serving import ServingConfig
from aureon.serving.batcher import MicroBatcher, QueueFull
from aureon.serving.inputs import BadInput, InputSpec, parse_bytes, parse_json
from aureon.serving.loading import ServedModel
from aureon.serving.metrics import ServingMetrics

if TYPE_CHECKING:  # loaded only for a tabular run
    from aureon.serving.table_inputs import TableInputs

WS_POLICY = 1008  # close code: the client broke the protocol's rules
WS_TOO_BIG = 1009
WS_AWAY = 1001


def input_spec(model: ServedModel, config: ServingConfig) -> InputSpec:
    return InputSpec(
        image_shape=model.info.image_shape,
        max_rows=config.max_rows,
        uint8_scale=config.uint8_scale,
        uint8_mean=config.uint8_mean,
        uint8_std=config.uint8_std,
    )


class PredictionService:
    """The shared state of the app: model, batcher, limits and metrics."""

    def __init__(self, model: ServedModel, config: ServingConfig) -> None:
        self.model = model
        self.config = config
        self.spec = input_spec(model, config)
        self.table: TableInputs | None = None
        if model.table is not None:
            from aureon.serving.table_inputs import TableInputs

            self.table = TableInputs(model.table.pipeline, max_rows=config.max_rows)
        self.metrics = ServingMetrics()
        self.batcher = MicroBatcher(
            model.logits,
            max_batch=config.max_batch,
            max_wait_s=config.max_wait_ms / 1000,
            max_queue=config.max_queue,
            torch_threads=config.torch_threads,
            on_batch=self.metrics.batch,
        )

    async def predict(self, images: np.ndarray) -> dict[str, Any]:
        return self.model.answer(await self.batcher.submit(images))

    def refuse(self, endpoint: str, error: BadInput) -> JSONResponse:
        self.metrics.errors.labels(endpoint, str(error.status)).inc()
        self.metrics.requests.labels(endpoint, str(error.status)).inc()
        return JSONResponse({"error": error.message}, status_code=error.status)


async def _read_body(request: Request, *, limit: int, timeout: float) -> bytes:
    """The body, refused with 413 past ``limit`` bytes and 408 when slower than ``timeout`` seconds."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadInput(413, f"the body is {declared} bytes; at most serving.max_body_bytes={limit} are accepted")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BadInput(413, f"the body exceeds serving.max_body_bytes={limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise BadInput(408, f"the body was not received within serving.read_timeout_s={timeout} s") from None
    return b"".join(chunks)


def _decode(body: bytes, content_type: str, headers: Any, service: PredictionService) -> np.ndarray:
    spec, table = service.spec, service.table
    if table is not None:
        if content_type and not content_type.startswith("application/json"):
            raise BadInput(
                415, f'a tabular run takes Content-Type application/json ({{"rows": [{{...}}]}}), got {content_type!r}'
            )
        return table.parse_json(body)
    if content_type.startswith("application/octet-stream"):
        return parse_bytes(body, shape_header=headers.get("x-shape"), dtype_header=headers.get("x-dtype"), spec=spec)
    if content_type and not content_type.startswith("application/json"):
        raise BadInput(415, f"Content-Type must be application/json or application/octet-stream, got {content_type!r}")
    return parse_json(body, spec)


def build_app(model: ServedModel, config: ServingConfig, *, extra_routes: list[Any] | None = None) -> Starlette:
    """The ASGI app serving ``model`` with ``config``'s limits."""
    service = PredictionService(model, config)

    async def predict(request: Request) -> Response:
        started = time.perf_counter()
        try:
            body = await _read_body(request, limit=config.max_body_bytes, timeout=config.read_timeout_s)
            images = _decode(body, request.headers.get("content-type", ""), request.headers, service)
            result = await service.predict(images)
        except BadInput as error:
            return service.refuse("predict", error)
        except QueueFull as error:
            return service.refuse("predict", BadInput(503, f"the server is busy: {error}; retry later"))
        service.metrics.latency.labels("predict").observe(time.perf_counter() - started)
        service.metrics.requests.labels("predict", "200").inc()
        return JSONResponse(result)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "model": model.info.checksum})

    async def model_info(request: Request) -> Response:
        return JSONResponse(model.info.to_json())

    async def metrics(request: Request) -> Response:
        return Response(service.metrics.render(), media_type=service.metrics.content_type)

    async def ws(websocket: WebSocket) -> None:
        await WebSocketSession(websocket, service).run()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        service.batcher.start()
        try:
            yield
        finally:
            service.batcher.stop()

    routes: list[Any] = [
        Route("/predict", predict, methods=["POST"]),
        Route("/health", health),
        Route("/model", model_info),
        Route("/metrics", metrics),
        WebSocketRoute("/ws", ws),
        *(extra_routes or []),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.service = service
    return app


class WebSocketSession:
    """One /ws client: requests in (JSON text, or a JSON header line + raw bytes), answers out in order.

    Each request: ``{"id": ..., "rows": [...]}`` (or ``"row"``), or a binary
    frame ``{"id": ..., "shape": [n, ...], "dtype": "float32"}\\n<bytes>``.
    Each answer echoes the id, with predictions or an ``error``. A client
    silent for serving.ws_idle_timeout_s, one that leaves serving.ws_max_pending
    answers unread, or one whose answer cannot be sent within
    serving.ws_send_timeout_s is closed with a frame saying so.
    """

    def __init__(self, websocket: WebSocket, service: PredictionService) -> None:
        self.ws = websocket
        self.service = service
        self.config = service.config
        self.outbox: asyncio.Queue[asyncio.Task[dict[str, Any]]] = asyncio.Queue(maxsize=self.config.ws_max_pending)
        self.closed = False

    async def run(self) -> None:
        await self.ws.accept()
        sender = asyncio.create_task(self._send_answers())
        try:
            await self._receive_requests()
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
            while not self.outbox.empty():
                self.outbox.get_nowait().cancel()

    async def _close(self, code: int, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.service.metrics.errors.labels("ws", str(code)).inc()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(code=code, reason=reason[:120]), self.config.ws_send_timeout_s)

    async def _receive_requests(self) -> None:
        while not self.closed:
            try:
                message = await asyncio.wait_for(self.ws.receive(), self.config.ws_idle_timeout_s)
            except TimeoutError:
                await self._close(
                    WS_AWAY, f"no request for serving.ws_idle_timeout_s={self.config.ws_idle_timeout_s} s"
                )
                return
            except (WebSocketDisconnect, RuntimeError):
                self.closed = True
                return
            if message["type"] == "websocket.disconnect":
                self.closed = True
                return
            raw = message.get("bytes") if message.get("bytes") is not None else message.get("text")
            if raw is None:
                continue
            if len(raw) > self.config.max_body_bytes:
                await self._close(WS_TOO_BIG, f"a message exceeds serving.max_body_bytes={self.config.max_body_bytes}")
                return
            if self.outbox.full():
                await self._close(
                    WS_POLICY,
                    f"{self.config.ws_max_pending} answers left unread (serving.ws_max_pending); read them first",
                )
                return
            self.outbox.put_nowait(asyncio.create_task(self._answer(raw)))

    async def _answer(self, raw: bytes | str) -> dict[str, Any]:
        started = time.perf_counter()
        ident = _request_id(raw)
        try:
            images = self._decode(raw)
            result: dict[str, Any] = {"id": ident, **await self.service.predict(images)}
        except BadInput as error:
            self.service.metrics.errors.labels("ws", str(error.status)).inc()
            return {"id": ident, "error": error.message, "status": error.status}
        except QueueFull as error:
            self.service.metrics.errors.labels("ws", "503").inc()
            return {"id": ident, "error": f"the server is busy: {error}", "status": 503}
        self.service.metrics.latency.labels("ws").observe(time.perf_counter() - started)
        self.service.metrics.requests.labels("ws", "200").inc()
        return result

    def _decode(self, raw: bytes | str) -> np.ndarray:
        spec, table = self.service.spec, self.service.table
        if isinstance(raw, str):
            try:
                document = json.loads(raw)
            except ValueError as err:
                raise BadInput(400, f"the message is not valid JSON ({err})") from None
            if isinstance(document, dict):
                document = {k: v for k, v in document.items() if k != "id"}
            if table is not None:
                return table.parse_document(document)
            return parse_json(json.dumps(document), spec)
        if table is not None:
            raise BadInput(415, 'a tabular run takes JSON text messages {"id": ..., "rows": [{...}]}, not binary')
        head, sep, body = raw.partition(b"\n")
        if not sep:
            raise BadInput(
                400, 'a binary message must be a JSON header line ({"shape": [...], "dtype": ...}) then bytes'
            )
        try:
            header = json.loads(head)
            shape = ",".join(str(int(s)) for s in header["shape"])
        except (ValueError, KeyError, TypeError) as err:
            raise BadInput(400, f'the header line must be JSON with "shape": [n, ...] ({err})') from None
        return parse_bytes(body, shape_header=shape, dtype_header=header.get("dtype"), spec=spec)

    async def _send_answers(self) -> None:
        while not self.closed:
            task = await self.outbox.get()
            result = await task
            try:
                await asyncio.wait_for(self.ws.send_text(json.dumps(result)), self.config.ws_send_timeout_s)
            except TimeoutError:
                await self._close(
                    WS_POLICY,
                    f"an answer could not be sent within serving.ws_send_timeout_s={self.config.ws_send_timeout_s} s",
                )
                return
            except (WebSocketDisconnect, RuntimeError, OSError):
                self.closed = True
                return


def _request_id(raw: bytes | str) -> Any:
    """The ``id`` a WebSocket request carries (in its JSON, or its binary header line), None if unreadable."""
    text = raw if isinstance(raw, str) else raw.partition(b"\n")[0]
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None
    return document.get("id") if isinstance(document, dict) else None
