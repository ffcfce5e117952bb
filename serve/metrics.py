"""Server metrics in the Prometheus text format (version 0.0.4), without a client library.

Counters, gauges and histograms with labels, rendered by `Metrics.render()` for `GET /metrics`.
Thread-safe (inference threads observe latencies), small enough to read in one sitting.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

LATENCY_BUCKETS_S: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0,
                                        2.0, 5.0)
BATCH_BUCKETS: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64)
Labels = tuple[tuple[str, str], ...]


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help = name, help_text
        self._lock = threading.Lock()

    def _header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str) -> None:
        super().__init__(name, help_text)
        self._values: dict[Labels, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self._values.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items()) or [((), 0.0)]
        return self._header() + [f"{self.name}{_labels(k)} {_num(v)}" for k, v in items]


class Gauge(Counter):
    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        with self._lock:
            self._values[tuple(sorted(labels.items()))] = value


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Sequence[float]) -> None:
        super().__init__(name, help_text)
        self.buckets = tuple(sorted(buckets))
        self._counts = [0] * (len(self.buckets) + 1)  # last = +Inf
        self._sum = 0.0
        self._samples: list[float] = []  # bounded reservoir for quantiles in /healthz and bench

    def observe(self, value: float) -> None:
        with self._lock:
            index = next((i for i, b in enumerate(self.buckets) if value <= b), len(self.buckets))
            self._counts[index] += 1
            self._sum += value
            self._samples.append(value)
            if len(self._samples) > 10_000:
                del self._samples[:5_000]

    @property
    def count(self) -> int:
        return sum(self._counts)

    def quantile(self, q: float) -> float | None:
        """Quantile of the recent observations (exact over the kept window); None if empty."""
        with self._lock:
            samples = sorted(self._samples)
        if not samples:
            return None
        return samples[min(len(samples) - 1, int(math.ceil(q * len(samples))) - 1)]

    def render(self) -> list[str]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        lines, running = self._header(), 0
        for bound, count in zip((*self.buckets, math.inf), counts, strict=True):
            running += count
            le = "+Inf" if math.isinf(bound) else _num(bound)
            lines.append(f'{self.name}_bucket{{le="{le}"}} {running}')
        lines += [f"{self.name}_sum {_num(total)}", f"{self.name}_count {running}"]
        return lines


def _labels(key: Labels) -> str:
    if not key:
        return ""
    escaped = (f'{k}="{v}"'.replace("\n", " ") for k, v in key)
    return "{" + ",".join(escaped) + "}"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class Metrics:
    """Every metric the server exports; one instance per server."""

    def __init__(self) -> None:
        self.sessions_active = Gauge("avsync_sessions_active", "Open websocket sessions "
                                     "(the autoscaling signal: docs/deploy.md).")
        self.sessions_max = Gauge("avsync_sessions_max",
                                  "Sessions this server accepts (--max-sessions); more get 503.")
        self.draining = Gauge("avsync_draining",
                              "1 after SIGTERM, while open sessions finish; new ones get 503.")
        self.sessions_total = Counter("avsync_sessions_total", "Sessions started, by outcome.")
        self.http_requests = Counter("avsync_http_requests_total",
                                     "HTTP answers given in process_request, by status.")
        self.messages = Counter("avsync_messages_total", "Messages, by direction and kind.")
        self.bytes = Counter("avsync_bytes_total", "Message bytes, by direction.")
        self.errors = Counter("avsync_errors_total", "Error messages sent, by code.")
        self.batch_size = Histogram("avsync_batch_size", "Chunks per runtime call.",
                                    BATCH_BUCKETS)
        self.inference_seconds = Histogram("avsync_inference_seconds",
                                           "Wall time of one batched runtime call.",
                                           LATENCY_BUCKETS_S)
        self.partial_latency = Histogram(
            "avsync_partial_latency_seconds",
            "From when the media completing a chunk was due by the stream clock (or received, "
            "if earlier) to queueing its results.",
            LATENCY_BUCKETS_S)

    def render(self) -> str:
        lines: list[str] = []
        for metric in vars(self).values():
            lines += metric.render()
        return "\n".join(lines) + "\n"
