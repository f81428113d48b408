"""``serving`` group: the prediction server, batch prediction and the live dashboard.

The same section is read by ``python -m simulations.serve`` (request limits,
micro-batching), ``python -m simulations.predict`` (batch size) and by
``python -m simulations.run dashboard=true`` (where the dashboard listens).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING

from aureon.config.base import require
from aureon.config.registry import register

SERVED_MODELS = ("full", "quantize", "prune", "distill")


@register("serving", "default")
@dataclass
class ServingConfig:
    """How predictions are served: limits that protect the server, and the batching that speeds it."""

    name: str = "default"
    host: str = "127.0.0.1"
    port: int = 8000
    max_batch: int = 64  # rows in one forward pass, across concurrent requests
    max_wait_ms: float = 2.0  # under concurrent load: how long a batch waits for more requests to join
    max_rows: int = 1024  # rows in one request
    max_body_bytes: int = 8 * 1024 * 1024  # a larger request body is refused with 413
    max_queue: int = 4096  # queued rows; beyond it requests are refused with 503
    torch_threads: int = 1  # threads of the forward pass (the event loop keeps its own)
    read_timeout_s: float = 10.0  # a request body not fully received in this time is refused with 408
    ws_send_timeout_s: float = 5.0  # a WebSocket client that does not read its answers is closed
    ws_idle_timeout_s: float = 60.0  # a WebSocket client silent this long is closed
    ws_max_pending: int = 8  # answers one WebSocket client may leave unread before it is closed
    # uint8 rows (raw pixels) become the model's input as ((pixel / uint8_scale) - uint8_mean) / uint8_std
    uint8_scale: float = 255.0
    uint8_mean: float = 0.1307
    uint8_std: float = 0.3081
    predict_batch: int = 1024  # rows per forward pass in `simulations.predict`
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 0  # 0: any free port (the terminal prints the URL)
    dashboard_linger_s: float = 0.0  # keep the dashboard up this long after the run ends

    def validate(self) -> None:
        for key in ("port", "dashboard_port"):
            value = getattr(self, key)
            require(0 <= value <= 65535, f"serving.{key}", value, "a TCP port in [0, 65535]")
        for key in ("max_batch", "max_rows", "max_body_bytes", "max_queue", "torch_threads"):
            value = getattr(self, key)
            require(value >= 1, f"serving.{key}", value, "an integer >= 1")
        require(self.ws_max_pending >= 1, "serving.ws_max_pending", self.ws_max_pending, "an integer >= 1")
        require(self.predict_batch >= 1, "serving.predict_batch", self.predict_batch, "an integer >= 1")
        require(self.dashboard_linger_s >= 0, "serving.dashboard_linger_s", self.dashboard_linger_s, ">= 0")
        require(self.max_wait_ms >= 0, "serving.max_wait_ms", self.max_wait_ms, ">= 0")
        for key in ("read_timeout_s", "ws_send_timeout_s", "ws_idle_timeout_s", "uint8_scale", "uint8_std"):
            value = getattr(self, key)
            require(value > 0, f"serving.{key}", value, "> 0")
        require(self.uint8_mean == self.uint8_mean, "serving.uint8_mean", self.uint8_mean, "a finite number")


@dataclass
class TrackingConfig:
    """Where a run is also recorded, beside its run directory."""

    mlflow: str | None = None  # an MLflow tracking URI (file:/..., sqlite:///..., http://...); null: off
    mlflow_experiment: str = "aureon"

    def validate(self) -> None:
        require(
            self.mlflow is None or bool(self.mlflow.strip()),
            "tracking.mlflow",
            self.mlflow,
            "an MLflow tracking URI or null",
        )
        require(bool(self.mlflow_experiment), "tracking.mlflow_experiment", self.mlflow_experiment, "a name")


@dataclass
class ServeJob:
    """``python -m simulations.serve run_dir=<run> [model=full|quantize|prune|distill] [serving.<key>=...]``."""

    run_dir: str = MISSING
    model: str = "full"
    input_shape: list[int] | None = None  # [C, H, W]; null: from the run's dataset
    num_classes: int | None = None
    serving: ServingConfig = field(default_factory=ServingConfig)

    def validate(self) -> None:
        require(self.model in SERVED_MODELS, "model", self.model, f"one of {', '.join(map(repr, SERVED_MODELS))}")
        require(
            self.input_shape is None or (len(self.input_shape) == 3 and all(s >= 1 for s in self.input_shape)),
            "input_shape",
            self.input_shape,
            "[C, H, W] with every size >= 1, or null",
        )
        require(self.num_classes is None or self.num_classes >= 2, "num_classes", self.num_classes, ">= 2 or null")
        self.serving.validate()


@dataclass
class PredictJob(ServeJob):
    """``python -m simulations.predict run_dir=<run> input=<csv|npy|idx folder> output=<.npy|.csv>``."""

    input: str = MISSING
    output: str = MISSING
    probabilities: bool = False  # .npy output: the (N, classes) probabilities instead of the classes
    progress: bool = True

    def validate(self) -> None:
        super().validate()
        require(
            self.output.endswith((".npy", ".csv", ".parquet")),
            "output",
            self.output,
            "a file name ending in .npy or .csv (.csv or .parquet for a tabular run)",
        )
