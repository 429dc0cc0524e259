"""``write_rows`` against the ``bulk_create`` it replaced, for both test projects.

:func:`assert_writes_what_bulk_create_wrote` writes the same recipients
twice, once through :func:`write_rows_with_bulk_create` (mailops' former
``write_rows``, kept here as the reference) and once through
``write_rows``, and compares every stored column of every row as the
database driver returns it.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from typing import Any
from unittest import mock

from django.db import connections, router
from django.db.models import Field
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from mailops.conf import get_setting
from mailops.models import MailLog, MailStatus, MailTrigger, batch_values
from mailops.recipients import Recipient, from_addresses
from mailops.sending import rows
from mailops.sending.composition import message_id_domain

# Subject and body as a command or the admin may give them: not only ASCII.
SUBJECT = "Prüfung ✓ — テスト 🚀 “quoted” 'single'"
BODY = "Grüße aus Köln,\nzweite Zeile — ✓ 🚀\n\n\ttab; backslash \\ and 100% sure\n"


def write_rows_with_bulk_create(
    template: MailLog,
    recipients: Iterable[Recipient],
    *,
    rejected_out: list[Recipient] | None = None,
) -> int:
    """What ``write_rows`` did before it built its own inserts (the reference)."""
    chunk_size = get_setting("CHUNK_SIZE")
    domain = message_id_domain(template.from_email)
    queued = 0
    iterator = iter(recipients)
    while chunk := list(islice(iterator, chunk_size)):
        objs = []
        for recipient in chunk:
            row = MailLog(
                **batch_values(template),
                batch_id=template.batch_id,
                recipient=rows.stored_address(recipient.address),
                user_id=recipient.user_id,
            )
            if recipient.valid:
                queued += 1
                row.status = MailStatus.QUEUED
                row.message_id = rows.new_message_id(domain)
            else:
                if rejected_out is not None:
                    rejected_out.append(recipient)
                row.status = MailStatus.REJECTED
                row.error = recipient.error
            objs.append(row)
        MailLog.objects.bulk_create(objs)
    return queued


def mixed_recipients(users: Sequence[Any]) -> list[Recipient]:
    """Valid and invalid addresses, with and without users, one cut short for the log."""
    entries = from_addresses(
        [
            "plain@example.com",
            "Mixed.Case+tag@Example.COM",
            "",
            "no-at-sign",
            "line@break.example\nBcc: x@example.com",
            "x" * 300 + "@example.com",  # rejected (over 254), stored whole
            "y" * 400 + "@example.com",  # rejected, stored cut to 320 with "…"
            "üñí@exämple.com",
        ]
    )
    for user in users:
        address = str(getattr(user, user.get_email_field_name()))
        entries.append(Recipient(address=address, user_id=user.pk))
        # The same user without an address, as recipients.from_users logs one.
        entries.append(Recipient(address="", user_id=user.pk, error="user has no email address"))
    return entries


def template_for(triggered_by: Any) -> MailLog:
    """A batch's template as :func:`mailops.sending.batches._template` builds one."""
    template = MailLog(
        mailer="default",
        backend="django.core.mail.backends.locmem.EmailBackend",
        from_email="Mailops Tests <mailops-tests@example.com>",
        subject=SUBJECT,
        body=BODY,
        trigger=MailTrigger.COMMAND,
        triggered_by=triggered_by,
        batch_id=uuid.uuid4(),
    )
    template.triggered_by_name = "oncall-ü"
    return template


def assert_writes_what_bulk_create_wrote(
    template: MailLog, recipients: list[Recipient], *, chunks: int
) -> None:
    """Both ways write the same rows; ``write_rows`` in ``chunks`` INSERT statements."""
    before = timezone.now()
    with _numbered_message_ids():
        expected_rejected: list[Recipient] = []
        expected = write_rows_with_bulk_create(template, recipients, rejected_out=expected_rejected)
    middle = timezone.now()
    connection = connections[router.db_for_write(MailLog)]
    with _numbered_message_ids(), CaptureQueriesContext(connection) as queries:
        rejected: list[Recipient] = []
        queued = rows.write_rows(template, recipients, rejected_out=rejected)
    after = timezone.now()

    assert (queued, rejected) == (expected, expected_rejected)
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == chunks

    stored = _stored_rows(template.batch_id)
    assert len(stored) == 2 * len(recipients)
    reference, written = stored[: len(recipients)], stored[len(recipients) :]
    clocked = {name for name, field in _columns() if getattr(field, "auto_now", False)}
    clocked |= {name for name, field in _columns() if getattr(field, "auto_now_add", False)}
    for old, new in zip(reference, written, strict=True):
        for name, _ in _columns():
            if name in clocked:
                # A timestamp: the same kind of value, read back below.
                assert type(new[name]) is type(old[name]), name
            else:
                assert new[name] == old[name], name
                assert type(new[name]) is type(old[name]), name

    logs = MailLog.objects.filter(batch_id=template.batch_id).order_by("id")
    times = list(logs.values_list("created_at", "updated_at"))
    assert all(before <= t <= middle for pair in times[: len(recipients)] for t in pair)
    assert all(middle <= t <= after for pair in times[len(recipients) :] for t in pair)


def _columns() -> list[tuple[str, Field[Any, Any]]]:
    return [(str(field.column), field) for field in rows.insert_fields()]


def _stored_rows(batch_id: uuid.UUID) -> list[dict[str, Any]]:
    """The batch's rows as the driver returns them, in insert order."""
    connection = connections[router.db_for_write(MailLog)]
    quote = connection.ops.quote_name
    names = [name for name, _ in _columns()]
    batch_field = MailLog._meta.get_field("batch_id")
    sql = (
        f"SELECT {', '.join(quote(name) for name in names)} "
        f"FROM {quote(MailLog._meta.db_table)} WHERE {quote(str(batch_field.column))} = %s "
        f"ORDER BY {quote(str(MailLog._meta.pk.column))}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [batch_field.get_db_prep_value(batch_id, connection)])
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@contextmanager
def _numbered_message_ids() -> Iterator[None]:
    """Message-IDs ``<1.mailops@domain>``, ``<2...`` from 1 again for each write."""
    numbers = itertools.count(1)
    with mock.patch.object(
        rows, "new_message_id", lambda domain: f"<{next(numbers)}.mailops@{domain}>"
    ):
        yield
