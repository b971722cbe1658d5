"""Prometheus metrics of one server (its own registry, so several apps in one process never mix counts)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Seconds: the model call of a small network is ~1 ms, a 224 px MobileNetV2 batch of 8 ~40 ms on 2 cores.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
AGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ServeMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("edgecls_http_requests", "HTTP requests by route and status.", ["route", "status"],
                                registry=r)
        self.errors = Counter("edgecls_errors", "Refused or failed requests by kind (bad_image, ...).", ["kind"],
                              registry=r)
        self.latency = Histogram("edgecls_classify_seconds", "POST /v1/classify: request received to response.",
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("edgecls_batch_size", "Images per model call.", buckets=BATCH_BUCKETS,
                                    registry=r)
        self.model_seconds = Histogram("edgecls_model_seconds", "Model call time per batch.",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("edgecls_queue_depth", "Images waiting for the model.", registry=r)
        self.in_flight = Gauge("edgecls_classify_in_flight", "Classify requests being handled.", registry=r)
        self.frame_age = Histogram("edgecls_frame_age_seconds", "Live source: frame capture to its result.",
                                   buckets=AGE_BUCKETS, registry=r)
        self.decodes_abandoned = Counter(
            "edgecls_decodes_abandoned", "Decodes still running when their request gave up (a thread took over).",
            registry=r)
        self.connections_closed = Counter(
            "edgecls_connections_closed", "Connections the server closed by limit (header_timeout, evicted, ...).",
            ["reason"], registry=r)
        self.last_frame_age = Gauge("edgecls_last_frame_age_seconds", "Live source: age of the newest result.",
                                    registry=r)

    def watch_queue(self, depth: Callable[[], float]) -> None:
        self.queue_depth.set_function(depth)

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.model_seconds.observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
