"""Prometheus text for ``/mail/metrics``, built per request from the log's indexes."""

from __future__ import annotations

from django.utils import timezone
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client import Enum as StateEnum

from mailops.alerts import MailerRates
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
        states=[HealthState.OK, HealthState.WARNING, HealthState.DEGRADED, HealthState.FAILING],
        registry=registry,
    )
    bounces = Gauge(
        "mailops_bounces_24h",
        "Messages logged in the last 24 h that bounced, by mailer.",
        ["mailer"],
        registry=registry,
    )
    complaints = Gauge(
        "mailops_complaints_24h",
        "Messages logged in the last 24 h that drew a complaint, by mailer.",
        ["mailer"],
        registry=registry,
    )
    bounce_rate = Gauge(
        "mailops_bounce_rate_24h",
        "Bounced share of the messages the mailer accepted in the last 24 h.",
        ["mailer"],
        registry=registry,
    )
    complaint_rate = Gauge(
        "mailops_complaint_rate_24h",
        "Complained share of the messages the mailer accepted in the last 24 h.",
        ["mailer"],
        registry=registry,
    )
    for health in all_mailer_health(now=now):
        rates = health.rates or MailerRates(mailer=health.mailer)
        bounces.labels(mailer=health.mailer).set(rates.bounces)
        complaints.labels(mailer=health.mailer).set(rates.complaints)
        bounce_rate.labels(mailer=health.mailer).set(rates.bounce_rate)
        complaint_rate.labels(mailer=health.mailer).set(rates.complaint_rate)
        if health.last_latency is not None:
            latency.labels(mailer=health.mailer).set(health.last_latency)
        canary_age = health.canary_age(now)
        if canary_age is not None:
            age.labels(mailer=health.mailer).set(canary_age)
        failures.labels(mailer=health.mailer).set(health.consecutive_failures)
        state.labels(mailer=health.mailer).state(health.state)
    return generate_latest(registry)
