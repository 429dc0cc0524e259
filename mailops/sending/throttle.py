"""Per-mailer limits from ``MAILOPS["THROTTLE"]``: a message rate and a daily quota.

``{"gmail": {"rate": 1, "daily_quota": 500}}`` keeps the ``gmail`` mailer
at one message per second and 500 messages in any 24 hours. The quota is
rolling, as Gmail counts it: what the mailer sent (``sent_at``) in the last
24 hours, read from the mail log, so it holds across processes and restarts.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Min
from django.utils import timezone
from django.utils.translation import gettext as _

from mailops.conf import get_setting
from mailops.models import MailLog

QUOTA_WINDOW = timedelta(hours=24)


def limits_for(alias: str) -> dict[str, float]:
    limits: dict[str, float] = get_setting("THROTTLE").get(alias, {}) or {}
    return limits


def rate_for(alias: str) -> float | None:
    """Messages per second allowed through ``alias``, or ``None`` for no limit."""
    rate = limits_for(alias).get("rate")
    return float(rate) if rate else None


@dataclass(frozen=True)
class QuotaStatus:
    """How much of a mailer's rolling daily quota is left."""

    alias: str
    limit: int | None
    used: int
    # When the oldest message in the window leaves it (a slot frees up).
    frees_at: datetime | None

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)

    @property
    def exhausted(self) -> bool:
        return self.remaining == 0

    def reason(self) -> str:
        """Why queued rows wait, for the row's ``error`` and for operators."""
        when = (
            timezone.localtime(self.frees_at).strftime("%Y-%m-%d %H:%M %Z")
            if self.frees_at
            else _("later")
        )
        return f"[{self.alias}] " + _(
            "daily quota of %(limit)s messages reached (%(used)s sent in the last 24 h); "
            "waiting in the queue, sending resumes from %(when)s"
        ) % {"limit": self.limit, "used": self.used, "when": when}


def quota_status(alias: str, *, now: datetime | None = None) -> QuotaStatus:
    """The quota of ``alias`` as the mail log shows it now (no query without a quota)."""
    quota = limits_for(alias).get("daily_quota")
    if not quota:
        return QuotaStatus(alias=alias, limit=None, used=0, frees_at=None)
    since = (now or timezone.now()) - QUOTA_WINDOW
    window = MailLog.objects.filter(mailer=alias, sent_at__gte=since)
    used = window.count()
    frees_at = None
    if used >= quota:
        oldest = window.aggregate(oldest=Min("sent_at"))["oldest"]
        frees_at = oldest + QUOTA_WINDOW if oldest else None
    return QuotaStatus(alias=alias, limit=int(quota), used=used, frees_at=frees_at)


class RateLimiter:
    """Spaces messages at least ``1 / rate`` seconds apart, across every thread that shares it.

    Parallel connections to one mailer share one limiter, so together they
    keep to the mailer's rate. Each caller reserves the next free slot under
    a lock and sleeps outside it.
    """

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)
