"""Site mail rows: one ``MailLog`` per recipient, written in one insert per call.

The insert is built from ``MailLog``'s own field list and each field's
``get_db_prep_save`` (what the ORM sends), not compiled by the ORM per
call: for the one-row write behind a single ``send_mail`` the ORM's
compilation and ``RETURNING id`` cost more than the insert itself, and the
log must not slow the site's mail (bench/site_mail.py).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from email.utils import parseaddr
from typing import Any

from django.db import OperationalError, connections, router, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from mailops.audit.capture import MessageRecord, RecipientOutcome
from mailops.conf import get_setting, stored_language
from mailops.mailers.info import backend_path as configured_backend_path
from mailops.mailers.registry import mailer_aliases
from mailops.models import MailLog, MailStatus, MailTrigger
from mailops.redaction import redact

logger = logging.getLogger("mailops.audit")


def backend_path(backend: Any, alias: str) -> str:
    """The BACKEND configured for ``alias``, or the class of an unnamed backend."""
    if alias and alias in mailer_aliases():
        return configured_backend_path(alias)
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def build_site_rows(
    outcomes: Sequence[tuple[MessageRecord, list[RecipientOutcome]]],
    *,
    alias: str,
    backend: str,
) -> list[dict[str, Any]]:
    """Field values of the rows for one ``send_messages`` call (one batch id)."""
    # Bodies carry password-reset links and one-time codes: kept only on request.
    store_body = bool(get_setting("STORE_SITE_MAIL_BODY"))
    batch_id = uuid.uuid4()
    now = timezone.now()
    rows = []
    for record, recipients in outcomes:
        message = record.message
        common = {
            "mailer": alias[:64],
            "backend": backend[:255],
            "from_email": str(message.from_email or "")[:320],
            "subject": str(message.subject or "")[:998],
            "body": str(message.body or "") if store_body else "",
            "message_id": record.message_id[:255],
            "trigger": MailTrigger.SITE,
            "batch_id": batch_id,
            "attempts": 1,
            "created_at": now,
            "updated_at": now,
        }
        for outcome in recipients:
            failure = outcome.failure
            if outcome.suppressed:
                status, error = MailStatus.SUPPRESSED, outcome.suppressed
            elif failure:
                status, error = MailStatus.FAILED, failure.reason
            else:
                status, error = MailStatus.SENT, ""
            rows.append(
                {
                    "status": status,
                    "recipient": (parseaddr(outcome.recipient)[1] or outcome.recipient)[:320],
                    "error": error,
                    "smtp_code": failure.smtp_code if failure else None,
                    "esp_message_id": outcome.esp_message_id[:255],
                    "sent_at": now if status == MailStatus.SENT else None,
                    **common,
                }
            )
    return rows


# What no database here can store in a text column: NUL (PostgreSQL refuses
# it, and one such row used to fail its whole multi-row insert) and lone
# surrogates (not UTF-8 at all).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_REPLACEMENT = "\ufffd"


def storable_row(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with characters a database cannot store replaced by U+FFFD, and a note saying so.

    The note goes into ``error`` ("log note: ..."), so the row shows it was
    altered (the message that went out had the original characters).
    """
    replaced = [
        name for name, value in row.items() if isinstance(value, str) and _UNSTORABLE.search(value)
    ]
    if not replaced:
        return row
    cleaned = {
        name: _UNSTORABLE.sub(_REPLACEMENT, value) if name in replaced else value
        for name, value in row.items()
    }
    # Stored in the row: in the site's language (see stored_language).
    with stored_language():
        note = _(
            "log note: characters the database cannot store (NUL, lone surrogates) "
            "were replaced by U+FFFD in %(fields)s"
        ) % {"fields": ", ".join(sorted(replaced))}
    cleaned["error"] = f"{cleaned['error']}; {note}" if cleaned.get("error") else note
    return cleaned


def _insert(rows: list[dict[str, Any]], *, using: str) -> None:
    """``INSERT`` the rows (made storable); fields not given get their Python default."""
    rows = [storable_row(row) for row in rows]
    connection = connections[using]
    # Every stored column but the id (and any the database fills itself).
    fields = [
        f for f in MailLog._meta.concrete_fields if not f.primary_key and not f.has_db_default()
    ]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(f.column)) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {quote(MailLog._meta.db_table)} ({columns}) VALUES ({placeholders})"  # noqa: S608 - names from model metadata
    params = [
        [
            f.get_db_prep_save(row[f.attname] if f.attname in row else f.get_default(), connection)
            for f in fields
        ]
        for row in rows
    ]
    with connection.cursor() as cursor:
        if len(params) == 1:
            cursor.execute(sql, params[0])
        else:
            cursor.executemany(sql, params)


def insert_site_rows(rows: list[dict[str, Any]]) -> int:
    """Insert ``rows`` in a transaction of their own (the background writer's way); raises."""
    using = router.db_for_write(MailLog)
    if len(rows) == 1:
        # One INSERT in autocommit, no BEGIN/COMMIT round trips of its own.
        _insert(rows, using=using)
    else:
        with transaction.atomic(using=using):
            _insert(rows, using=using)
    log_failed_sends(rows)
    return len(rows)


def write_site_rows(rows: list[dict[str, Any]]) -> int:
    """Insert ``rows`` in the sender's thread; on any failure log it and return 0, never raise.

    The message already went out: a log that cannot be written (database
    down, table missing, a caller's broken transaction) must not turn a
    sent mail into an error for the code that sent it. The savepoint keeps
    a caller's own transaction usable after a failed insert.
    """
    if not rows:
        return 0
    using = router.db_for_write(MailLog)
    try:
        if transaction.get_connection(using).in_atomic_block:
            # The caller's transaction (its commit, its durability): a
            # savepoint keeps it usable if this insert fails.
            with transaction.atomic(using=using):
                _insert(rows, using=using)
            log_failed_sends(rows)
            return len(rows)
        return insert_site_rows(rows)
    except Exception as error:  # noqa: BLE001 - logged; the sender must not see it
        if len(rows) == 1 or isinstance(error, OperationalError):
            # One row, or the database itself is unavailable: nothing to isolate.
            log_unwritten(rows, error)
            return 0
        # One bad row must not cost the others theirs: each in its own savepoint.
        return sum(write_site_rows([row]) for row in rows)


def log_unwritten(rows: list[dict[str, Any]], error: BaseException) -> None:
    """Say that ``rows`` could not be written, and why (redacted); a lone row by its recipient."""
    if len(rows) == 1:
        row = rows[0]
        logger.error(
            "site mail: 1 log row(s) not written (the mail to %s, message id %s; %s: %s); "
            "the sender was not affected",
            row.get("recipient", "?"),
            row.get("message_id", "?") or "?",
            type(error).__name__,
            redact(str(error)),
        )
        return
    logger.error(
        "site mail: %d log row(s) not written (%s: %s); the sender was not affected",
        len(rows),
        type(error).__name__,
        redact(str(error)),
    )


def log_failed_sends(rows: list[dict[str, Any]]) -> None:
    """A warning per failed recipient, as for mailops' own sends."""
    for row in rows:
        if row["status"] == MailStatus.FAILED:
            logger.warning(
                "site mail to %s via %s failed: %s", row["recipient"], row["mailer"], row["error"]
            )
