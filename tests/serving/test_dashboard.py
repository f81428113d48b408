"""The live dashboard in a real headless Chromium while a short run goes on."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websockets

REPO = Path(__file__).resolve().parents[2]
ROUNDS = 6  # about 3 s a round: a browser slow to start (a loaded machine) still sees rounds arrive


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError("chromium is not installed (Debian: apt-get install chromium); this test needs it")


class Page:
    """One Chromium tab driven over the DevTools protocol."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, **params: object) -> dict:
        self.next_id += 1
        await self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            reply = json.loads(await self.ws.recv())
            if reply.get("id") == self.next_id:
                return reply.get("result", {})

    async def eval(self, expression: str) -> object:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")


STATE = (
    "JSON.stringify({rounds: document.getElementById('status').dataset.rounds ?? null, "
    "finished: document.getElementById('status').dataset.finished ?? null, "
    "rows: document.querySelectorAll('tr.round-row').length, "
    "points: document.querySelectorAll('#chart-accuracy circle.point').length})"
)


@pytest.mark.integration
def test_the_dashboard_shows_the_rounds_as_they_arrive(tmp_path: Path) -> None:
    browser = _chromium()
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulations.run",
            "dataset=digits",
            "strategy=centralized",
            "privacy=none",
            f"num_rounds={ROUNDS}",
            "train.local_epochs=6",
            "dashboard=true",
            "serving.dashboard_linger_s=20",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    chrome = None
    try:
        url = None
        assert run.stdout is not None
        for line in run.stdout:
            match = re.search(r"dashboard:\s*(http://\S+)", line)
            if match:
                url = match.group(1)
                break
        assert url, "the run printed no dashboard URL"
        profile = tmp_path / "chrome"
        chrome = subprocess.Popen(
            [
                browser,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.is_file() or not port_file.read_text().strip():
            assert time.monotonic() < deadline, "chromium did not start"
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        target = next(t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page")
        seen = asyncio.run(_watch(target["webSocketDebuggerUrl"], url, tmp_path / "dashboard.png"))
    finally:
        if chrome is not None:
            chrome.kill()
            chrome.wait()
        run.kill()
        run.wait()
    mid = [s for s in seen if 1 <= int(s["rounds"]) < ROUNDS]
    assert mid, f"no state with some but not all rounds was seen: {seen}"
    assert all(s["rows"] == int(s["rounds"]) for s in seen)
    final = seen[-1]
    assert final == {"rounds": str(ROUNDS), "finished": "true", "rows": ROUNDS, "points": ROUNDS}
    assert (tmp_path / "dashboard.png").stat().st_size > 1000


async def _watch(debugger: str, url: str, screenshot: Path) -> list[dict]:
    async with websockets.connect(debugger, max_size=None) as ws:
        page = Page(ws)
        await page.call("Page.navigate", url=url)
        seen: list[dict] = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            raw = await page.eval(STATE)
            if isinstance(raw, str):
                state = json.loads(raw)
                if state["rounds"] is not None and (not seen or state != seen[-1]):
                    seen.append(state)
                if state["finished"] == "true" and state["rounds"] == str(ROUNDS):
                    shot = await page.call("Page.captureScreenshot", format="png")
                    screenshot.write_bytes(base64.b64decode(shot["data"]))
                    return seen
            await asyncio.sleep(0.05)
        return seen
