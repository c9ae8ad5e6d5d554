"""Prometheus metrics. Each process has its own registry so tests can build several apps in one process."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))

    def __post_init__(self) -> None:
        r = self.registry
        self._http_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.http_requests = Counter(
            "notifier_http_requests_total", "HTTP requests answered", ["method", "route", "status"], registry=r
        )
        self.http_latency = Histogram(
            "notifier_http_request_seconds", "HTTP request latency", ["method", "route"], registry=r
        )
        self.jobs = Counter("notifier_jobs_total", "Worker jobs run", ["function", "outcome"], registry=r)
        self.job_latency = Histogram("notifier_job_seconds", "Worker job duration", ["function"], registry=r)
        self.polls = Counter("notifier_polls_total", "Source polls", ["kind", "outcome"], registry=r)
        self.events = Counter("notifier_events_total", "Change events written", ["type"], registry=r)
        self.deliveries = Counter(
            "notifier_deliveries_total", "Deliveries finished", ["channel", "outcome"], registry=r
        )

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        """One answered request. The labelled series are looked up once per method, route and status: `labels()`
        takes a lock and builds its key at every call, a cost on the hottest path there is."""
        key = (method, route, status)
        series = self._http_series.get(key)
        if series is None:
            series = self._http_series[key] = (
                self.http_requests.labels(method, route, str(status)),
                self.http_latency.labels(method, route),
            )
        series[0].inc()
        series[1].observe(seconds)
