"""The one accessor for ``settings.MAILOPS``, read at call time.

Reading at call time (not into module globals at import) keeps
``override_settings`` working in tests and in projects that tweak settings.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

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
}


def get_setting(name: str) -> Any:
    """Return ``settings.MAILOPS[name]``, or the documented default."""
    if name not in DEFAULTS:
        raise KeyError(f"Unknown mailops setting {name!r}")
    configured = getattr(settings, "MAILOPS", {}) or {}
    return configured.get(name, DEFAULTS[name])


def from_email_for(alias: str) -> str:
    """The From address for messages sent through ``alias``."""
    from_emails: dict[str, str] = get_setting("FROM_EMAILS")
    return from_emails.get(alias) or settings.DEFAULT_FROM_EMAIL
