"""The one accessor for ``settings.MAILOPS``, read at call time.

Reading at call time (not into module globals at import) keeps
``override_settings`` working in tests and in projects that tweak settings.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.functional import Promise
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from mailops.exceptions import InvalidSetting
from mailops.retention.policy import retention_problems

#: Every ``MAILOPS`` key with its default; a key not listed here is unknown
#: (``manage.py check``: mailops.W008).
DEFAULTS: dict[str, Any] = {
    # MAILERS alias used when a caller does not name one.
    "DEFAULT_MAILER": "default",
    # Per-alias sender addresses; falls back to DEFAULT_FROM_EMAIL.
    "FROM_EMAILS": {},
    # Rows written and messages delivered per database round trip.
    "CHUNK_SIZE": 500,
    # Messages sent between two writes of their outcomes.
    "DELIVERY_CHUNK_SIZE": 100,
    # The django.tasks backend alias that delivers batches.
    "TASK_BACKEND": "default",
    # Batches with more recipients than this are queued for a worker and the
    # caller returns at once (only when TASK_BACKEND runs tasks elsewhere:
    # Django's ImmediateBackend runs them inside enqueue()).
    "ASYNC_THRESHOLD": 50,
    # Parallel connections per mailer and batch: a queued batch gets this many
    # delivery tasks (one connection each); a batch delivered in the caller's
    # process sends over this many connections in as many threads.
    "DELIVERY_CONCURRENCY": 1,
    # A queued user selection larger than this gets its rows written by the
    # worker, not by the request (100,000 rows take seconds to insert).
    "WRITE_IN_REQUEST_LIMIT": 5000,
    # Rows the worker writes per transaction for such a selection (fewer,
    # larger chunks are faster: 100,000 rows took 18 s in chunks of 500,
    # 8.4 s in chunks of 5,000 on PostgreSQL here).
    "WRITE_CHUNK_SIZE": 5000,
    # Attempts per message (transient failures only; 5xx fail at once).
    "MAX_ATTEMPTS": 3,
    # Seconds before the first retry; doubled after every further attempt.
    "RETRY_BACKOFF": 60,
    # Seconds a row may stay "sending" before recovery treats its worker as dead.
    "SENDING_LEASE": 600,
    # Per-mailer limits: {alias: {"rate": messages_per_second, "daily_quota": n}}.
    "THROTTLE": {},
    # "Send me a test mail": sends allowed per user in the window (seconds).
    "SELF_SERVICE_LIMIT": 5,
    "SELF_SERVICE_WINDOW": 3600,
    # manage.py maildoctor / "Check DNS": DKIM selectors per alias ({alias: [selector, ...]}),
    # DNS servers to ask (["ip[:port]", ...]; empty: the system's), seconds per DNS
    # query, and seconds the admin keeps a mailer's findings.
    "DKIM_SELECTORS": {},
    "DNS_NAMESERVERS": [],
    "DNS_TIMEOUT": 2.0,
    "DNS_CACHE_SECONDS": 300,
    # Seconds the mail log chart's days before today stay in Django's cache.
    "CHART_CACHE_SECONDS": 300,
    # Proof of arrival: {alias: {"host", "port", "username", "password", "ssl",
    # "folders", "timeout"}}, the IMAP mailbox where that mailer's test mails
    # can be read back (the reference project fills it from MAILBOX_URL,
    # MAILBOX_<ALIAS>_URL and the Gmail preset). Keep the password under
    # "password": Django's error pages mask keys named like that.
    "MAILBOXES": {},
    # Seconds `sendtestmail --verify` (and "Send and verify") waits for arrival.
    "VERIFY_TIMEOUT": 120,
    # ... and how long "Send and verify" waits inside the request when no task
    # worker is configured (TASKS uses Django's ImmediateBackend).
    "VERIFY_ADMIN_TIMEOUT": 30,
    # /mail/health/ and /mail/metrics answer only "Authorization: Bearer <this>";
    # empty refuses every request.
    "HEALTH_TOKEN": "",
    # A mailer is "failing" after this many failures in a row (sends or canaries).
    "HEALTH_FAILING_AFTER": 3,
    # "degraded" when the last canary took longer than this many seconds ...
    "HEALTH_MAX_LATENCY": 300,
    # ... or is older than this (an hourly canary plus slack), for mailers with a mailbox.
    "HEALTH_CANARY_MAX_AGE": 7200,
    # /mail/metrics counts messages created in the last this many seconds.
    "METRICS_WINDOW": 86400,
    # Log every message the site sends (send_mail, password reset, ...) as
    # "site" rows, not only mailops' own test mails (mailops.audit).
    "AUDIT_ALL_MAIL": False,
    # Keep the bodies of site mail: off, since reset links and one-time
    # codes are secrets; without a body a site row cannot be resent.
    "STORE_SITE_MAIL_BODY": False,
    # How site-mail rows are written: "background" (a writer thread, many
    # rows per insert, outside the sender's transaction) or "inline" (in the
    # sender's thread and transaction, one insert per send).
    "AUDIT_WRITE": "background",
    # User import (admin): files larger than this many bytes, or with more
    # data rows than this, are refused with a form error before any row is
    # checked (a 20,000-row preview used to hold one request for 86 s).
    "IMPORT_MAX_BYTES": 5 * 1024 * 1024,
    "IMPORT_MAX_ROWS": 10_000,
    # mailbounces: a report whose Message-ID matches no entry is matched to the
    # newest entry sent to its recipient at most this many seconds before it
    # arrived (a weaker match); 7 days covers a relay's 5-day retries.
    "BOUNCE_MATCH_WINDOW": 7 * 86400,
    # Messages larger than this (bytes) are not read; they are listed instead.
    "BOUNCE_MAX_MESSAGE_SIZE": 10 * 1024 * 1024,
    # Seconds one mailbox may take to read (the whole IMAP session).
    "BOUNCE_READ_TIMEOUT": 300,
    # The suppression list (mailops.suppression): an address whose mail
    # bounced softly (mailbox full, greylisted) this many times within
    # SOFT_BOUNCE_WINDOW seconds is suppressed like a hard bounce.
    "SOFT_BOUNCE_LIMIT": 3,
    "SOFT_BOUNCE_WINDOW": 7 * 86400,
    # Site mail (AUDIT_ALL_MAIL) is not sent to suppressed addresses.
    "SUPPRESS_SITE_MAIL": False,
    # Functions whose mail goes out even to suppressed addresses (dotted
    # paths; a message sent while one of them runs): a password reset is
    # what someone who fixed their mailbox asks for first.
    "SUPPRESSION_BYPASS": ["django.contrib.auth.forms.PasswordResetForm.send_mail"],
    # /mail/health/ warns when a mailer's bounces (or complaints) in the last
    # 24 hours exceed this share of the messages it accepted.
    "BOUNCE_RATE_WARNING": 0.02,
    "COMPLAINT_RATE_WARNING": 0.001,
    # A URL that gets a JSON POST when a canary fails or a rate crosses its
    # threshold ("" sends none), and the seconds that POST may take.
    "ALERT_WEBHOOK": "",
    "ALERT_TIMEOUT": 5.0,
    # How long finished rows stay in the log, in days, by trigger and status:
    # {trigger or "*": {status or "*": days}}; the most specific entry wins.
    # Empty: nothing is ever deleted (see docs/howto/retention.md).
    "RETENTION": {},
    # Days until a finished row's body is cleared, and an UnmatchedBounce
    # deleted (None: never).
    "BODY_RETENTION": None,
    "UNMATCHED_BOUNCE_RETENTION": None,
    # purgemaillog: rows per transaction; rest after each: PURGE_PAUSE s at
    # least, PURGE_PAUSE_RATIO times as long as the batch took.
    "PURGE_BATCH_SIZE": 5000,
    "PURGE_PAUSE": 0.05,
    "PURGE_PAUSE_RATIO": 1.0,
}


# --- what each value may be -------------------------------------------------------
DAY_SECONDS = 86_400
# A rule is (test, what the value must be). The doctor's keys (DKIM_SELECTORS,
# DNS_NAMESERVERS, DNS_TIMEOUT) have their own checks, E010-E012.
# Lazy texts: RULES is built at import, the text is read when a check or a send runs.
Rule = tuple[Callable[[Any], bool], str | Promise]


def _whole(minimum: int) -> Rule:
    def test(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= minimum

    return test, format_lazy(
        gettext_lazy("must be a whole number, {minimum} or more"), minimum=minimum
    )


def _seconds(*, positive: bool, maximum: float = math.inf) -> Rule:
    def test(value: Any) -> bool:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or value > maximum:
            return False
        return value > 0 if positive else value >= 0

    if math.isfinite(maximum):
        what = gettext_lazy("must be a number of seconds, 0 to {maximum}")
        return test, format_lazy(what, maximum=f"{maximum:g}")
    if positive:
        return test, gettext_lazy("must be a number of seconds, more than 0")
    return test, gettext_lazy("must be a number of seconds, 0 or more")


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _flag(value: Any) -> bool:
    return isinstance(value, bool)


def _token(value: Any) -> bool:
    return isinstance(value, str)


def _mapping(value: Any) -> bool:
    return isinstance(value, dict)


def _from_emails(value: Any) -> bool:
    return isinstance(value, dict) and all(_text(k) and _text(v) for k, v in value.items())


def _limit(value: Any, whole: bool) -> bool:
    if value is None:
        return True
    kinds = (int,) if whole else (int, float)
    return isinstance(value, kinds) and not isinstance(value, bool) and value >= 0


def _throttle(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    for limits in value.values():
        if not isinstance(limits, dict) or not set(limits) <= {"rate", "daily_quota"}:
            return False
        if not (_limit(limits.get("rate"), False) and _limit(limits.get("daily_quota"), True)):
            return False
    return True


def _dotted_paths(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(
        isinstance(path, str) and "." in path.strip(".") for path in value
    )


def _number(*, maximum: float = math.inf) -> Rule:
    def test(value: Any) -> bool:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return number and math.isfinite(value) and 0 <= value <= maximum

    if maximum == 1:
        return test, gettext_lazy("must be a share between 0 and 1 (0.02 is 2%)")
    if math.isfinite(maximum):
        what = gettext_lazy("must be a number from 0 to {maximum}")
        return test, format_lazy(what, maximum=f"{maximum:g}")
    return test, gettext_lazy("must be a number, 0 or more")


def _http_url(value: Any) -> bool:
    return isinstance(value, str) and (
        not value or value.startswith("http://") or value.startswith("https://")
    )


RULES: dict[str, Rule] = {
    "DEFAULT_MAILER": (_text, gettext_lazy("must be a MAILERS alias (a non-empty string)")),
    "FROM_EMAILS": (
        _from_emails,
        gettext_lazy("must map MAILERS aliases to From addresses (strings)"),
    ),
    "CHUNK_SIZE": _whole(1),
    "DELIVERY_CHUNK_SIZE": _whole(1),
    "TASK_BACKEND": (_text, gettext_lazy("must be a TASKS alias (a non-empty string)")),
    "ASYNC_THRESHOLD": _whole(0),
    "DELIVERY_CONCURRENCY": _whole(1),
    "WRITE_IN_REQUEST_LIMIT": _whole(0),
    "WRITE_CHUNK_SIZE": _whole(1),
    "MAX_ATTEMPTS": _whole(1),
    "RETRY_BACKOFF": _seconds(positive=False),
    "SENDING_LEASE": _seconds(positive=True),
    "THROTTLE": (
        _throttle,
        gettext_lazy(
            "must map MAILERS aliases to {'rate': messages per second, 'daily_quota': "
            "messages per 24 h} (numbers, 0 or more; either may be left out)"
        ),
    ),
    "SELF_SERVICE_LIMIT": _whole(0),
    "SELF_SERVICE_WINDOW": _whole(1),
    "DNS_CACHE_SECONDS": _seconds(positive=False),
    # Bounded so that no cache backend refuses the timeout (and the page with it).
    "CHART_CACHE_SECONDS": _seconds(positive=False, maximum=DAY_SECONDS),
    # Proof of arrival; each mailbox's own fields are E030's to check.
    "MAILBOXES": (_mapping, gettext_lazy("must map MAILERS aliases to mailbox dicts")),
    "VERIFY_TIMEOUT": _seconds(positive=True),
    "VERIFY_ADMIN_TIMEOUT": _seconds(positive=True),
    "HEALTH_TOKEN": (_token, gettext_lazy("must be a string (empty refuses every request)")),
    "HEALTH_FAILING_AFTER": _whole(1),
    "HEALTH_MAX_LATENCY": _seconds(positive=True),
    "HEALTH_CANARY_MAX_AGE": _seconds(positive=True),
    "METRICS_WINDOW": _whole(1),
    # Site-mail audit.
    "AUDIT_ALL_MAIL": (_flag, gettext_lazy("must be True or False")),
    "STORE_SITE_MAIL_BODY": (_flag, gettext_lazy("must be True or False")),
    "AUDIT_WRITE": (
        lambda value: value in ("background", "inline"),
        gettext_lazy('must be "background" or "inline"'),
    ),
    # User import limits.
    "IMPORT_MAX_BYTES": _whole(1),
    "IMPORT_MAX_ROWS": _whole(1),
    # Bounce reading.
    "BOUNCE_MATCH_WINDOW": _whole(1),
    "BOUNCE_MAX_MESSAGE_SIZE": _whole(1024),
    "BOUNCE_READ_TIMEOUT": _seconds(positive=True),
    # Suppression list and alerts.
    "SOFT_BOUNCE_LIMIT": _whole(1),
    "SOFT_BOUNCE_WINDOW": _seconds(positive=True),
    "SUPPRESS_SITE_MAIL": (_flag, gettext_lazy("must be True or False")),
    "SUPPRESSION_BYPASS": (
        _dotted_paths,
        gettext_lazy(
            "must be a list of dotted paths of functions (e.g. "
            "'django.contrib.auth.forms.PasswordResetForm.send_mail')"
        ),
    ),
    "BOUNCE_RATE_WARNING": _number(maximum=1),
    "COMPLAINT_RATE_WARNING": _number(maximum=1),
    "ALERT_WEBHOOK": (_http_url, gettext_lazy("must be an http:// or https:// URL, or empty")),
    "ALERT_TIMEOUT": _seconds(positive=True),
    # Retention; mailops.retention.policy holds the rules for RETENTION's shape.
    "RETENTION": (
        lambda value: not retention_problems(value),
        gettext_lazy(
            'must map triggers (or "*") to {status (or "*"): days}, days a whole number '
            "0 or more, in-flight statuses (queued, sending) left out"
        ),
    ),
    "BODY_RETENTION": (
        lambda value: value is None or _whole(0)[0](value),
        gettext_lazy("must be a whole number of days, 0 or more, or None (bodies kept)"),
    ),
    # At least the week a first look at a mailbox reads back (bounces.mailbox's
    # FIRST_LOOK_BACK): a report purged sooner would be read and kept again.
    "UNMATCHED_BOUNCE_RETENTION": (
        lambda value: value is None or _whole(7)[0](value),
        gettext_lazy("must be a whole number of days, 7 or more, or None (reports kept)"),
    ),
    "PURGE_BATCH_SIZE": _whole(1),
    # Bounded: a mistyped huge pause would stop a purge halfway, for good.
    "PURGE_PAUSE": _seconds(positive=False, maximum=3600),
    "PURGE_PAUSE_RATIO": _number(maximum=100),
}


def setting_problem(name: str, value: Any) -> str:
    """What is wrong with ``value`` for ``MAILOPS[name]``, or ``""`` if nothing is."""
    rule = RULES.get(name)
    if rule is None or rule[0](value):
        return ""
    return _("%(rule)s; it is %(value)r (%(type)s).") % {
        "rule": rule[1],
        "value": value,
        "type": type(value).__name__,
    }


def configured_settings() -> dict[str, Any]:
    """``settings.MAILOPS`` as the project wrote it (no defaults, nothing checked)."""
    configured = getattr(settings, "MAILOPS", None) or {}
    return configured if isinstance(configured, dict) else {}


def get_setting(name: str) -> Any:
    """Return ``settings.MAILOPS[name]``, or the documented default.

    A value of the wrong type or out of range raises
    :class:`~mailops.exceptions.InvalidSetting` (an ``ImproperlyConfigured``
    naming the key) here, where it is read, not a ``TypeError`` somewhere in
    the middle of a send.
    """
    if name not in DEFAULTS:
        raise KeyError(f"Unknown mailops setting {name!r}")
    value = configured_settings().get(name, DEFAULTS[name])
    problem = setting_problem(name, value)
    if problem:
        raise InvalidSetting(name, problem)
    return value


def validate_settings() -> None:
    """Raise :class:`~mailops.exceptions.InvalidSetting` for the first bad ``MAILOPS`` value.

    For entry points (commands) that read many keys: one clear error up front.
    """
    for name in RULES:
        get_setting(name)


def from_email_for(alias: str) -> str:
    """The From address for messages sent through ``alias``."""
    from_emails: dict[str, str] = get_setting("FROM_EMAILS")
    return from_emails.get(alias) or settings.DEFAULT_FROM_EMAIL


def stored_language() -> translation.override:
    """Activate the site's ``LANGUAGE_CODE`` for text written into a row.

    A row's reason (``MailLog.error``, a connection check's subject) is written
    once and read later by every admin, by exports and by commands. It is
    written in the site's language, not in the language of whoever happened to
    trigger the send (a German admin's request, an English worker): the same
    failure then reads the same whichever path recorded it, and the worker, the
    commands and the task queue, which have no request, already speak
    ``LANGUAGE_CODE``. The labels around it are translated when shown.
    """
    return translation.override(settings.LANGUAGE_CODE)
