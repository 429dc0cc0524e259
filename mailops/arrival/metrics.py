"""Prometheus text for ``/mail/metrics``, built per request from the log's indexes."""

from __future__ import annotations

from django.utils import timezone
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client import Enum as StateEnum

from mailops.arrival.health import (
    HealthState,
    all_mailer_health,
    queue_depth,
    recent_message_counts,
)
from mailops.conf import get_setting


def render_metrics() -> bytes:
    """The current metrics in Prometheus' text exposition format.

    A fresh registry per scrape: the values are read from the database, so
    nothing accumulates in the process (several web workers agree).
    """
    now = timezone.now()
    registry = CollectorRegistry(auto_describe=True)
    window = int(get_setting("METRICS_WINDOW"))
    messages = Gauge(
        "mailops_messages",
        f"Messages logged in the last {window} s, by mailer and status.",
        ["mailer", "status"],
        registry=registry,
    )
    for (mailer, status), count in sorted(recent_message_counts(now=now).items()):
        messages.labels(mailer=mailer, status=status).set(count)
    Gauge("mailops_queue_depth", "Messages queued or being sent.", registry=registry).set(
        queue_depth()
    )
    latency = Gauge(
        "mailops_arrival_latency_seconds",
        "Seconds the last verified test mail took from acceptance to the mailbox.",
        ["mailer"],
        registry=registry,
    )
    age = Gauge(
        "mailops_canary_age_seconds",
        "Seconds since the last arrival check (sendtestmail --verify) finished.",
        ["mailer"],
        registry=registry,
    )
    failures = Gauge(
        "mailops_consecutive_failures",
        "The newest messages that failed in a row (counted up to the failing threshold).",
        ["mailer"],
        registry=registry,
    )
    state = StateEnum(
        "mailops_mailer_state",
        "The mailer's health state, as /mail/health/ reports it.",
        ["mailer"],
        states=[HealthState.OK, HealthState.DEGRADED, HealthState.FAILING],
        registry=registry,
    )
    for health in all_mailer_health(now=now):
        if health.last_latency is not None:
            latency.labels(mailer=health.mailer).set(health.last_latency)
        canary_age = health.canary_age(now)
        if canary_age is not None:
            age.labels(mailer=health.mailer).set(canary_age)
        failures.labels(mailer=health.mailer).set(health.consecutive_failures)
        state.labels(mailer=health.mailer).state(health.state)
    return generate_latest(registry)
