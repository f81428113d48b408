"""The live dashboard: one HTML page and a WebSocket feed of the rounds as they complete.

``DashboardFeed`` is a RunTracker listener: it keeps every round so far (a
page opened mid-run first receives the history) and pushes each new one to
the connected pages. The page and its script ship in this package
(``static/``), need no build step and load nothing from the internet.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from importlib.resources import files
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from aureon.tracking.listeners import RunListener
from aureon.tracking.records import RoundRecord, client_names

STATIC = files("aureon.serving") / "static"


def round_point(record: RoundRecord) -> dict[str, Any]:
    """What the page plots for one round."""
    names = client_names(record.clients)
    return {
        "round": record.round,
        "accuracy": record.test_accuracy,
        "loss": record.test_loss,
        "epsilon_max": record.epsilon_max,
        "epsilon": {n: c.epsilon for n, c in zip(names, record.clients, strict=True) if c.epsilon is not None},
        "bytes_up": record.bytes_up,
        "bytes_down": record.bytes_down,
        "joined": len(record.clients),
        "failed": len(record.failures),
        "rejected": len(record.rejected),
        "seconds": record.seconds,
        "aborted": record.aggregation_error is not None,
    }


def _finite(value: Any) -> Any:
    """NaN/Inf as null: the page's JSON.parse rejects them."""
    if isinstance(value, float) and value != value or value in (float("inf"), float("-inf")):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


class DashboardFeed(RunListener):
    """The history of a run and its subscribers; called from the run's thread, read from the server's loop."""

    def __init__(self, *, title: str, num_rounds: int) -> None:
        self.title = title
        self.num_rounds = num_rounds
        self.initial: dict[str, float] | None = None
        self.points: list[dict[str, Any]] = []
        self.finished: bool = False
        self._lock = threading.Lock()
        self._subscribers: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[str]]] = set()

    # -------------------------------------------------------- RunTracker listener
    def on_initial(self, *, accuracy: float, loss: float) -> None:
        self._publish(
            {"type": "initial", "accuracy": accuracy, "loss": loss}, initial={"accuracy": accuracy, "loss": loss}
        )

    def on_round(self, *, record: RoundRecord) -> None:
        point = _finite(round_point(record))
        self._publish({"type": "round", "point": point}, point=point)

    def on_finish(self, *, results: dict[str, Any], run_dir: Path) -> None:
        self._publish({"type": "finish", "finished": bool(results.get("finished"))}, finish=True)

    def on_restore(self, *, records: list[RoundRecord], initial: dict[str, float] | None) -> None:
        """A resumed run's earlier rounds."""
        with self._lock:
            self.points = [_finite(round_point(r)) for r in records]
            if initial is not None:
                self.initial = {"accuracy": initial["test_accuracy"], "loss": initial["test_loss"]}

    # ------------------------------------------------------------------ feed
    def history(self) -> dict[str, Any]:
        with self._lock:
            return {
                "type": "history",
                "title": self.title,
                "num_rounds": self.num_rounds,
                "initial": self.initial,
                "points": list(self.points),
                "finished": self.finished,
            }

    def _publish(self, message: dict[str, Any], **change: Any) -> None:
        text = json.dumps(message, allow_nan=False)
        with self._lock:
            if "initial" in change:
                self.initial = change["initial"]
            if "point" in change:
                self.points.append(change["point"])
            if change.get("finish"):
                self.finished = True
            subscribers = list(self._subscribers)
        for loop, queue in subscribers:
            with contextlib.suppress(RuntimeError):  # that loop has closed
                loop.call_soon_threadsafe(_offer, queue, text)

    def subscribe(self) -> tuple[asyncio.Queue[str], str]:
        """A queue of the messages to come, and the history up to now (taken atomically)."""
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1024)
        with self._lock:
            self._subscribers.add((asyncio.get_running_loop(), queue))
        return queue, json.dumps(self.history(), allow_nan=False)

    def unsubscribe(self, queue: asyncio.Queue[str]) -> None:
        with self._lock:
            self._subscribers = {s for s in self._subscribers if s[1] is not queue}


def _offer(queue: asyncio.Queue[str], text: str) -> None:
    with contextlib.suppress(asyncio.QueueFull):  # a page that stopped reading misses updates, not the run
        queue.put_nowait(text)


def dashboard_routes(feed: DashboardFeed, *, prefix: str = "") -> list[Any]:
    """The page (``/``), its script, the history as JSON and the WebSocket feed (``/feed``)."""

    async def page(request: Request) -> Response:
        return HTMLResponse(STATIC.joinpath("dashboard.html").read_text(encoding="utf-8"))

    async def script(request: Request) -> Response:
        return Response(STATIC.joinpath("dashboard.js").read_text(encoding="utf-8"), media_type="text/javascript")

    async def history(request: Request) -> Response:
        return JSONResponse(feed.history())

    async def stream(websocket: WebSocket) -> None:
        await websocket.accept()
        queue, first = feed.subscribe()
        try:
            await websocket.send_text(first)
            while True:
                await websocket.send_text(await queue.get())
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            feed.unsubscribe(queue)

    return [
        Route(f"{prefix}/", page),
        Route(f"{prefix}/dashboard.js", script),
        Route(f"{prefix}/history", history),
        WebSocketRoute(f"{prefix}/feed", stream),
    ]


def dashboard_app(feed: DashboardFeed) -> Starlette:
    return Starlette(routes=dashboard_routes(feed))
