"""``python -m simulations.serve run_dir=<run> [model=full|quantize|prune|distill] [serving.<key>=...]``

Serves a finished run's global model (or a compressed one that
``simulations.compress`` wrote) over HTTP and WebSocket on uvicorn:

    POST /predict   JSON {"rows": [[...], ...]} or raw float32/uint8 bytes
                    (Content-Type: application/octet-stream, X-Shape: n,C,H,W, X-Dtype)
    /ws             a WebSocket: one JSON request per message, one answer each
    /health /metrics (Prometheus text) /model (run, round, accuracy, epsilon, checksum)

Settings (serving.host, serving.port, serving.max_batch, serving.max_wait_ms,
serving.max_body_bytes, serving.torch_threads, ...) are documented in
aureon/config/serving.py. A bad argument or a run folder without a model
ends the command with one ``error: ...`` line and exit code 2.
"""

from __future__ import annotations

from aureon.cli import run_cli
from aureon.config.serving import ServeJob
from aureon.serving.jobs import parse_job


def serve_command(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    job = parse_job(ServeJob, argv)
    from aureon.serving.app import build_app
    from aureon.serving.loading import load_served_model
    from aureon.serving.server import serve_forever

    model = load_served_model(
        job.run_dir,
        model=job.model,
        input_shape=tuple(job.input_shape) if job.input_shape else None,
        num_classes=job.num_classes,
    )
    app = build_app(model, job.serving)
    info = model.info

    def ready(url: str) -> None:
        print(f"serving {info.file} of {info.run_dir} (sha256 {info.checksum[:12]}) at {url}", flush=True)

    serve_forever(app, host=job.serving.host, port=job.serving.port, on_ready=ready)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(serve_command, argv)


if __name__ == "__main__":
    raise SystemExit(main())
