"""Which finished rows a purge may delete: ``MAILOPS["RETENTION"]`` read as rules.

``RETENTION`` maps a trigger (or ``"*"``) to ``{status (or "*"): days}``.
For one row the most specific entry decides: trigger and status, then the
trigger with ``"*"``, then ``"*"`` with the status, then ``"*"``/``"*"``.
No entry: the row is kept. Rows in flight (queued, sending, or in doubt)
are never purged, whatever the rules say.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from mailops.statuses import UNFINISHED_STATUSES, MailStatus, MailTrigger

WILDCARD = "*"

#: Statuses a purge may delete (everything but the in-flight ones).
PURGEABLE_STATUSES: tuple[str, ...] = tuple(
    status for status in MailStatus.values if status not in UNFINISHED_STATUSES
)


@dataclass(frozen=True)
class PurgeRule:
    """Rows of these (trigger, status) pairs created before local midnight of ``cutoff_day``."""

    days: int
    cutoff_day: date
    pairs: frozenset[tuple[str, str]]

    @property
    def cutoff(self) -> datetime:
        return local_midnight(self.cutoff_day)

    def matching(self) -> Q:
        by_trigger: dict[str, list[str]] = {}
        for trigger, status in sorted(self.pairs):
            by_trigger.setdefault(trigger, []).append(status)
        pairs = Q()
        for trigger, statuses in by_trigger.items():
            pairs |= Q(trigger=trigger, status__in=statuses)
        return Q(created_at__lt=self.cutoff) & pairs


def local_midnight(day: date) -> datetime:
    """The start of ``day`` in the current time zone (daylight saving time included)."""
    return timezone.make_aware(datetime.combine(day, time.min))


def retention_days(retention: dict[str, dict[str, int]], trigger: str, status: str) -> int | None:
    """How many days a finished row of ``trigger`` and ``status`` is kept (None: for ever)."""
    if status in UNFINISHED_STATUSES:
        return None
    for t, s in ((trigger, status), (trigger, WILDCARD), (WILDCARD, status), (WILDCARD, WILDCARD)):
        days = retention.get(t, {}).get(s)
        if days is not None:
            return int(days)
    return None


def purge_rules(
    *,
    retention: dict[str, dict[str, int]],
    older_than: int | None = None,
    statuses: list[str] | None = None,
    triggers: list[str] | None = None,
    today: date | None = None,
) -> list[PurgeRule]:
    """The rules one purge applies, one per distinct number of days.

    ``older_than`` replaces the configured days for every pair; ``statuses``
    and ``triggers`` narrow the pairs (in-flight statuses never appear).
    """
    today = today or timezone.localdate()
    wanted_statuses = [s for s in (statuses or PURGEABLE_STATUSES) if s in PURGEABLE_STATUSES]
    wanted_triggers = triggers or list(MailTrigger.values)
    by_days: dict[int, set[tuple[str, str]]] = {}
    for trigger in wanted_triggers:
        for status in wanted_statuses:
            days = (
                older_than if older_than is not None else retention_days(retention, trigger, status)
            )
            if days is not None:
                by_days.setdefault(days, set()).add((trigger, status))
    return [
        PurgeRule(days=days, cutoff_day=today - timedelta(days=days), pairs=frozenset(pairs))
        for days, pairs in sorted(by_days.items())
    ]


def rows_matching(rules: list[PurgeRule]) -> Q:
    """Rows any rule deletes; never a row in flight (queued, sending, in doubt)."""
    matching = Q(pk__in=[])
    for rule in rules:
        matching |= rule.matching()
    return matching & ~Q(status__in=UNFINISHED_STATUSES) & Q(in_doubt=False)


def retention_problems(value: Any) -> list[str]:
    """What is wrong with a ``RETENTION`` value: one line per mistake (empty: nothing)."""
    if not isinstance(value, dict):
        return ["RETENTION is not a dict"]
    problems = []
    statuses = set(MailStatus.values) - set(UNFINISHED_STATUSES)
    for trigger, rules in value.items():
        if trigger != "*" and trigger not in MailTrigger.values:
            problems.append(f"unknown trigger {trigger!r}")
        if not isinstance(rules, dict):
            problems.append(f"{trigger!r} does not map statuses to days")
            continue
        for status, days in rules.items():
            if status in UNFINISHED_STATUSES:
                problems.append(f"{status!r} rows are in flight and never purged")
            elif status != "*" and status not in statuses:
                problems.append(f"unknown status {status!r}")
            if not isinstance(days, int) or isinstance(days, bool) or days < 0:
                problems.append(f"{trigger!r}/{status!r}: {days!r} is not a number of days")
    return problems
