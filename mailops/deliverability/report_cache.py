"""The admin keeps each mailer's last DNS findings in Django's cache for a few minutes.

The Mailers page reads only this cache, so loading it never waits for DNS;
"Check DNS" runs the doctor and stores the result here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.utils import timezone

from mailops.conf import get_setting
from mailops.deliverability.findings import Level, MailerReport

KEY = "mailops:maildoctor:{alias}"


@dataclass(frozen=True)
class CachedReport:
    report: MailerReport
    checked_at: datetime

    @property
    def errors(self) -> int:
        return self.report.count(Level.ERROR)

    @property
    def warnings(self) -> int:
        return self.report.count(Level.WARNING)


def store_report(report: MailerReport) -> CachedReport:
    """Keep ``report`` for ``MAILOPS["DNS_CACHE_SECONDS"]``."""
    cached = CachedReport(report=report, checked_at=timezone.now())
    data: dict[str, Any] = {"report": report.as_dict(), "checked_at": cached.checked_at.isoformat()}
    cache.set(KEY.format(alias=report.alias), data, timeout=int(get_setting("DNS_CACHE_SECONDS")))
    return cached


def cached_report(alias: str) -> CachedReport | None:
    """The findings of the last "Check DNS" of ``alias``, if still cached."""
    data = cache.get(KEY.format(alias=alias))
    if not isinstance(data, dict):
        return None
    try:
        return CachedReport(
            report=MailerReport.from_dict(data["report"]),
            checked_at=datetime.fromisoformat(data["checked_at"]),
        )
    except (KeyError, TypeError, ValueError):
        # Written by an older version: treat as not checked.
        return None
