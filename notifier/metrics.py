"""Prometheus metrics. Each process has its own registry so tests can build several apps in one process."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))

    def __post_init__(self) -> None:
        r = self.registry
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
