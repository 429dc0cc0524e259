"""Bounce and complaint rates per mailer, and the alert webhook.

A mailer whose bounces exceed ``MAILOPS["BOUNCE_RATE_WARNING"]`` (or
complaints ``COMPLAINT_RATE_WARNING``) of the messages it accepted in the
last 24 hours is in ``warning`` on ``/mail/health/`` and the Mailers page.

``MAILOPS["ALERT_WEBHOOK"]`` gets a JSON POST when such a rate crosses its
threshold or a canary fails, and again when the condition clears: an alert
that does not travel by the mail that is broken. Each condition's state is
kept in :class:`~mailops.models.AlertState`, changed by a conditional UPDATE,
so each crossing is announced once however many processes check it. The POST
runs in a background thread with ``ALERT_TIMEOUT``: a check never waits for it,
and no send ever runs a check.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from mailops.conf import get_setting
from mailops.models import ACCEPTED_STATUSES, AlertState, MailLog, MailStatus
from mailops.redaction import redact

logger = logging.getLogger("mailops.alerts")

# The rates' window: the last 24 hours (Gmail's and most providers' own window).
RATE_WINDOW = timedelta(hours=24)

BOUNCE_RATE = "bounce_rate"
COMPLAINT_RATE = "complaint_rate"
CANARY = "canary"


@dataclass(frozen=True)
class MailerRates:
    """What one mailer's messages of the last 24 hours became."""

    mailer: str
    accepted: int = 0
    bounces: int = 0
    complaints: int = 0

    @property
    def bounce_rate(self) -> float:
        return self.bounces / self.accepted if self.accepted else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.accepted if self.accepted else 0.0

    def warnings(self) -> dict[str, str]:
        """``{condition: why}`` for each rate over its threshold."""
        found = {}
        bounce_limit = float(get_setting("BOUNCE_RATE_WARNING"))
        complaint_limit = float(get_setting("COMPLAINT_RATE_WARNING"))
        if self.accepted and self.bounce_rate > bounce_limit:
            found[BOUNCE_RATE] = (
                f"{self.bounces} of {self.accepted} messages bounced in the last 24 h "
                f"({self.bounce_rate:.2%}, over {bounce_limit:.2%})"
            )
        if self.accepted and self.complaint_rate > complaint_limit:
            found[COMPLAINT_RATE] = (
                f"{self.complaints} of {self.accepted} messages drew a complaint in the last "
                f"24 h ({self.complaint_rate:.2%}, over {complaint_limit:.2%})"
            )
        return found


def mailer_rates(
    mailers: Iterable[str] | None = None, *, now: datetime | None = None
) -> dict[str, MailerRates]:
    """Per mailer, the last 24 hours' accepted, bounced and complained messages (one query).

    Counted by when the message was logged: a bounce read tomorrow counts
    against today's send. Bounced and complained messages are also accepted
    ones (the mailer took them first), so the rates are shares of ``accepted``.
    """
    now = now or timezone.now()
    rows = MailLog.objects.filter(
        created_at__gte=now - RATE_WINDOW, status__in=ACCEPTED_STATUSES
    ).order_by()
    if mailers is not None:
        rows = rows.filter(mailer__in=list(mailers))
    counted = rows.values("mailer").annotate(
        messages=Count("pk"),
        bounces=Count("pk", filter=Q(status=MailStatus.BOUNCED)),
        complaints=Count("pk", filter=Q(status=MailStatus.COMPLAINED)),
    )
    return {
        row["mailer"]: MailerRates(
            mailer=row["mailer"],
            accepted=row["messages"],
            bounces=row["bounces"],
            complaints=row["complaints"],
        )
        for row in counted
    }


def check_rates(alias: str) -> None:
    """Re-check one mailer's bounce and complaint rates; announce a crossing.

    Called after a bounce or complaint is recorded (its transaction committed).
    The canary's condition is checked where canaries end
    (:func:`mailops.arrival.health.check_alerts`) and on ``/mail/health/``.
    Never raises: a failing check is logged.
    """
    try:
        rates = mailer_rates([alias]).get(alias, MailerRates(mailer=alias))
        update_alerts({alias: rate_conditions(rates)})
    except Exception:  # a monitoring check must not break what called it
        logger.exception("alerts: could not check mailer %s", alias)


def rate_conditions(rates: MailerRates) -> dict[str, str | None]:
    """Both rate conditions of a mailer: why each is raised, or ``None``."""
    warnings = rates.warnings()
    return {BOUNCE_RATE: warnings.get(BOUNCE_RATE), COMPLAINT_RATE: warnings.get(COMPLAINT_RATE)}


def canary_condition(failures: int, outcome: str) -> str | None:
    """Why the canary alert is raised (``None``: the last canary reached the inbox)."""
    return f"the last canary did not reach the inbox ({outcome})" if failures else None


def update_alerts(conditions: dict[str, dict[str, str | None]]) -> list[dict[str, Any]]:
    """Record each mailer's conditions (``{mailer: {condition: why or None}}``); post changes.

    One query reads the states; only a change writes (a conditional UPDATE,
    so of several processes noticing the same crossing one announces it).
    Returns the payloads posted.
    """
    wanted = {
        f"{alias}:{condition}"[:160]: (alias, condition, why)
        for alias, by_condition in conditions.items()
        for condition, why in by_condition.items()
    }
    current = dict(AlertState.objects.filter(key__in=wanted).values_list("key", "raised"))
    posted = []
    for key, (alias, condition, why) in wanted.items():
        raised = why is not None
        if current.get(key, False) == raised:
            continue
        if key not in current:
            AlertState.objects.get_or_create(key=key)
        changed = AlertState.objects.filter(key=key, raised=not raised).update(
            raised=raised, detail=redact(why or "")[:500], changed_at=timezone.now()
        )
        if changed:
            payload = alert_payload(alias, condition, why)
            logger.warning("alert %s %s: %s", key, payload["state"], payload["message"])
            post_alert(payload)
            posted.append(payload)
    return posted


def alert_payload(alias: str, condition: str, why: str | None) -> dict[str, Any]:
    """The JSON an alert webhook receives (no address, no secret: texts are redacted)."""
    return {
        "source": "mailops",
        "mailer": alias,
        "alert": condition,
        "state": "raised" if why is not None else "cleared",
        "message": redact(why or f"{condition} is back to normal"),
        "at": timezone.now().isoformat(),
    }


def post_alert(payload: dict[str, Any]) -> threading.Thread | None:
    """POST ``payload`` to ``ALERT_WEBHOOK`` in a background thread (``None``: no webhook)."""
    url = str(get_setting("ALERT_WEBHOOK") or "")
    if not url:
        return None
    timeout = float(get_setting("ALERT_TIMEOUT"))
    thread = threading.Thread(
        target=_post, args=(url, payload, timeout), name="mailops-alert", daemon=True
    )
    thread.start()
    return thread


def _post(url: str, payload: dict[str, Any], timeout: float) -> None:
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked by the setting's rule
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "mailops-alerts"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            response.read(1024)
    except (OSError, ValueError) as error:
        # The URL may hold a token: name neither it nor what the error echoes of it.
        logger.warning(
            "alerts: the alert webhook could not be reached (%s: %s)",
            type(error).__name__,
            redact(str(getattr(error, "reason", "") or getattr(error, "code", "") or "")),
        )
