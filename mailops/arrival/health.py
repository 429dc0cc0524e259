"""Is mail working? Per-mailer state for ``/mail/health/`` and ``/mail/metrics``.

Every query here reads a handful of index entries, whatever the size of the
log: the last send (``maillog_mailer_sent_part_idx``), the last failure
(``maillog_mailer_failed_idx``, partial), the last few outcomes
(``maillog_mailer_idx`` with a LIMIT), the last canaries
(``maillog_mailer_verified_idx``, partial), the queue (``maillog_status_idx``)
and the messages of the recent window (``maillog_recent_idx``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Sum
from django.utils import timezone

from mailops.alerts import (
    CANARY,
    MailerRates,
    canary_condition,
    mailer_rates,
    rate_conditions,
    update_alerts,
)
from mailops.arrival.mailboxes import verifiable_aliases
from mailops.arrival.verify import NO_TRUSTED_VERDICT, has_trusted_verdict
from mailops.conf import get_setting
from mailops.mailers.registry import mailer_aliases
from mailops.models import ACCEPTED_STATUSES, ArrivalStatus, MailLog, MailStatus
from mailops.retention.history import closed_counts, closed_until
from mailops.retention.policy import local_midnight

logger = logging.getLogger("mailops.alerts")


class HealthState:
    OK = "ok"
    # Mail goes out, but its bounce or complaint rate is over the threshold
    # (mailops.alerts): HTTP 200 still, so probes do not take the site down.
    WARNING = "warning"
    DEGRADED = "degraded"
    FAILING = "failing"


# States in which mail works (/mail/health/ answers 200).
WORKING_STATES = (HealthState.OK, HealthState.WARNING)


@dataclass
class MailerHealth:
    """What the log says about one mailer, and the verdict."""

    mailer: str
    has_mailbox: bool
    last_sent_at: datetime | None = None
    last_failed_at: datetime | None = None
    # The newest sends that failed in a row (counted up to the threshold).
    consecutive_failures: int = 0
    last_verified_at: datetime | None = None
    last_arrival: str = ""
    # last_arrival, or "no trusted verdict" for an inbox arrival without one.
    last_outcome: str = ""
    last_latency: float | None = None
    # Canaries that did not reach the inbox in a row, up to the threshold.
    consecutive_canary_failures: int = 0
    # The last 24 hours (mailops.alerts.mailer_rates).
    rates: MailerRates | None = None
    # Rates over their thresholds, {condition: why}.
    warnings: dict[str, str] = field(default_factory=dict)
    state: str = HealthState.OK
    reasons: list[str] = field(default_factory=list)

    def canary_age(self, now: datetime) -> float | None:
        if self.last_verified_at is None:
            return None
        return round((now - self.last_verified_at).total_seconds(), 1)

    def as_dict(self, now: datetime) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "state": self.state,
            "reasons": self.reasons,
            "last_sent_at": iso(self.last_sent_at),
            "last_failed_at": iso(self.last_failed_at),
            "consecutive_failures": self.consecutive_failures,
            "verify_mailbox": self.has_mailbox,
            "last_verified_at": iso(self.last_verified_at),
            "last_arrival": self.last_arrival or None,
            "last_arrival_latency_seconds": self.last_latency,
            "last_canary_age_seconds": self.canary_age(now),
            "consecutive_canary_failures": self.consecutive_canary_failures,
            "accepted_24h": self.rates.accepted if self.rates else 0,
            "bounces_24h": self.rates.bounces if self.rates else 0,
            "complaints_24h": self.rates.complaints if self.rates else 0,
            "bounce_rate_24h": round(self.rates.bounce_rate, 6) if self.rates else 0.0,
            "complaint_rate_24h": round(self.rates.complaint_rate, 6) if self.rates else 0.0,
            "warnings": list(self.warnings.values()),
        }


def mailer_health(
    alias: str, *, now: datetime | None = None, rates: MailerRates | None = None
) -> MailerHealth:
    """The health of mailer ``alias`` from a few LIMIT queries on the log.

    ``rates`` (from :func:`~mailops.alerts.mailer_rates`) saves a query when
    the caller counted every mailer at once.
    """
    now = now or timezone.now()
    limit = int(get_setting("HEALTH_FAILING_AFTER"))
    health = MailerHealth(mailer=alias, has_mailbox=alias in verifiable_aliases())
    if rates is None:
        rates = mailer_rates([alias], now=now).get(alias)
    health.rates = rates or MailerRates(mailer=alias)
    health.warnings = health.rates.warnings()
    rows = MailLog.objects.filter(mailer=alias)
    health.last_sent_at = (
        rows.filter(sent_at__isnull=False, status__in=ACCEPTED_STATUSES)
        .order_by("-sent_at")
        .values_list("sent_at", flat=True)
        .first()
    )
    health.last_failed_at = (
        rows.filter(status=MailStatus.FAILED)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    outcomes = rows.filter(status__in=[MailStatus.FAILED, *ACCEPTED_STATUSES]).order_by(
        "-created_at"
    )
    health.consecutive_failures = _leading(
        list(outcomes.values_list("status", flat=True)[:limit]), MailStatus.FAILED
    )
    canaries = list(
        rows.filter(verified_at__isnull=False)
        .order_by("-verified_at")
        .values(
            "verified_at",
            "arrival",
            "arrived_at",
            "sent_at",
            "created_at",
            "authentication_results",
        )[:limit]
    )
    if canaries:
        last = canaries[0]
        health.last_verified_at = last["verified_at"]
        health.last_arrival = last["arrival"]
        health.last_outcome = _canary_outcome(last)
        if last["arrived_at"] is not None:
            sent = last["sent_at"] or last["created_at"]
            health.last_latency = round((last["arrived_at"] - sent).total_seconds(), 1)
        health.consecutive_canary_failures = _leading(
            [_canary_outcome(canary) for canary in canaries], ArrivalStatus.INBOX, negate=True
        )
    _judge(health, now=now, limit=limit)
    return health


def _canary_outcome(canary: Mapping[str, Any]) -> str:
    """The arrival, unless the inbox showed only verdicts not from the receiving server."""
    arrival = str(canary["arrival"])
    if arrival == ArrivalStatus.INBOX and not has_trusted_verdict(canary["authentication_results"]):
        return NO_TRUSTED_VERDICT
    return arrival


def _leading(values: list[str], value: str, *, negate: bool = False) -> int:
    """How many of ``values`` from the start equal ``value`` (or, negated, differ from it)."""
    count = 0
    for current in values:
        if (current == value) == negate:
            break
        count += 1
    return count


def _judge(health: MailerHealth, *, now: datetime, limit: int) -> None:
    reasons = health.reasons
    failing = False
    if health.consecutive_failures >= limit:
        failing = True
        reasons.append(f"the last {health.consecutive_failures} messages failed")
    elif health.consecutive_failures:
        reasons.append("the last message failed")
    if health.consecutive_canary_failures >= limit:
        failing = True
        reasons.append(f"the last {health.consecutive_canary_failures} canaries missed the inbox")
    elif health.consecutive_canary_failures:
        reasons.append(f"the last canary did not reach the inbox ({health.last_outcome})")
    max_latency = float(get_setting("HEALTH_MAX_LATENCY"))
    if health.last_latency is not None and health.last_latency > max_latency:
        reasons.append(f"the last canary took {health.last_latency:g} s (over {max_latency:g})")
    if health.has_mailbox:
        max_age = timedelta(seconds=float(get_setting("HEALTH_CANARY_MAX_AGE")))
        if health.last_verified_at is None:
            reasons.append("no canary has run (sendtestmail --verify)")
        elif now - health.last_verified_at > max_age:
            reasons.append(f"no canary for over {max_age.total_seconds():g} s")
    degraded = bool(reasons)
    reasons.extend(health.warnings.values())
    if failing:
        health.state = HealthState.FAILING
    elif degraded:
        health.state = HealthState.DEGRADED
    elif health.warnings:
        health.state = HealthState.WARNING


def all_mailer_health(*, now: datetime | None = None) -> list[MailerHealth]:
    """:func:`mailer_health` for every alias in ``MAILERS``."""
    now = now or timezone.now()
    aliases = sorted(mailer_aliases())
    rates = mailer_rates(aliases, now=now)
    return [mailer_health(alias, now=now, rates=rates.get(alias)) for alias in aliases]


def alert_conditions(health: MailerHealth) -> dict[str, str | None]:
    """Every alert condition of a mailer (rates and canary): why it is raised, or ``None``."""
    conditions = rate_conditions(health.rates or MailerRates(mailer=health.mailer))
    conditions[CANARY] = canary_condition(health.consecutive_canary_failures, health.last_outcome)
    return conditions


def check_alerts(alias: str) -> None:
    """Re-check a mailer's alert conditions (after a canary); never raises."""
    try:
        update_alerts({alias: alert_conditions(mailer_health(alias))})
    except Exception:  # a monitoring check must not break the verification
        logger.exception("alerts: could not check mailer %s", alias)


def recent_message_counts(*, now: datetime | None = None) -> dict[tuple[str, str], int]:
    """``{(mailer, status): n}`` for rows created within ``METRICS_WINDOW`` seconds.

    Days a purge closed are read from the daily roll-up, whole: a closed day
    that overlaps the window counts entirely (the rows of a purged day can
    no longer be told apart by the hour).
    """
    now = now or timezone.now()
    since = now - timedelta(seconds=float(get_setting("METRICS_WINDOW")))
    counts: Counter[tuple[str, str]] = Counter()
    closed = closed_until()
    if closed is not None and local_midnight(closed) > since:
        history = (
            closed_counts(filters={"day__gte": timezone.localdate(since), "day__lt": closed})
            .values("mailer", "status")
            .annotate(n=Sum("count"))
        )
        counts.update({(row["mailer"], row["status"]): int(row["n"]) for row in history})
        since = local_midnight(closed)
    rows = (
        MailLog.objects.filter(created_at__gte=since)
        .order_by()
        .values("mailer", "status")
        .annotate(n=Count("pk"))
    )
    counts.update({(row["mailer"], row["status"]): row["n"] for row in rows})
    return dict(counts)


def queue_depth() -> int:
    """Rows waiting to be sent (queued or being sent)."""
    return MailLog.objects.filter(status__in=[MailStatus.QUEUED, MailStatus.SENDING]).count()
