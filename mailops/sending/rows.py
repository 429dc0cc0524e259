"""Writing a batch's log rows: from recipients in bulk, or from a user selection in SQL.

:func:`write_rows` bulk-inserts one row per recipient, a chunk at a time.
For a user selection,
``INSERT INTO mailops_maillog (...) SELECT ... FROM auth_user WHERE ...``
creates one row per selected user without loading a single user into
Python: 100,000 users cost one statement, not 100,000 objects. Every
MailLog column gets a value: the template's, or the field's default, so
a field added to the model later needs no change here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connections
from django.db.models import CharField, F, Field, QuerySet, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from mailops import recipients
from mailops.conf import get_setting
from mailops.models import MailLog, MailStatus, batch_values
from mailops.recipients import Recipient
from mailops.sending.composition import (
    message_id_domain,
    new_message_id,
    user_message_id_parts,
)


def insert_user_rows(
    users: QuerySet[Any], template: MailLog, *, with_address: bool, domain: str
) -> int:
    """Insert rows for the users that have an address (``queued``) or not (``rejected``).

    Returns how many rows the database wrote. The Message-ID is unique per
    batch and user: ``<batch.user_pk.mailops@domain>``.
    """
    model = get_user_model()
    selection = recipients.annotate_address(users)
    now = timezone.now()
    columns: dict[str, Any] = {
        "created_at": now,
        "updated_at": now,
        "user": F("pk"),
    }
    if with_address:
        before, after = user_message_id_parts(template.batch_id, domain)
        selection = recipients.with_address(selection)
        columns.update(
            status=MailStatus.QUEUED,
            recipient=F(recipients.ADDRESS_ANNOTATION),
            message_id=Concat(
                Value(before),
                Cast("pk", CharField()),
                Value(after),
                output_field=CharField(),
            ),
        )
    else:
        selection = recipients.without_address(selection)
        columns.update(
            status=MailStatus.REJECTED,
            recipient=Value(""),
            error=Concat(
                Value("user '"),
                F(model.USERNAME_FIELD),
                Value("' has no email address"),
                output_field=CharField(),
            ),
        )

    names: list[str] = []
    expressions: dict[str, Any] = {}
    for field in MailLog._meta.concrete_fields:
        if field.primary_key:
            continue
        value = columns.get(field.name, _template_value(template, field))
        alias = f"_mailops_{field.attname}"
        expressions[alias] = (
            value if hasattr(value, "resolve_expression") else Value(value, output_field=field)
        )
        names.append(field.column or field.attname)
    select = selection.annotate(**expressions).values(*expressions)
    sql, params = select.query.sql_with_params()
    connection = connections[select.db]
    quote = connection.ops.quote_name
    insert = (
        f"INSERT INTO {quote(MailLog._meta.db_table)} "
        f"({', '.join(quote(name) for name in names)}) {sql}"
    )
    with connection.cursor() as cursor:
        cursor.execute(insert, params)
        return int(cursor.rowcount)


def count_with_address(users: QuerySet[Any]) -> int:
    """How many of the selected users have an address."""
    return int(recipients.with_address(recipients.annotate_address(users)).count())


def user_ids_with_address(users: QuerySet[Any]) -> list[Any]:
    """The primary keys of the selected users who have an address, in key order."""
    addressed = recipients.with_address(recipients.annotate_address(users))
    return list(addressed.order_by("pk").values_list("pk", flat=True))


def _template_value(template: MailLog, field: Field[Any, Any]) -> Any:
    value = getattr(template, field.attname)
    if value is None and not field.null:
        return field.get_default()
    return value


def unique_recipients(recipients: Iterable[Recipient]) -> Iterator[Recipient]:
    """Each address once per user (an invalid entry is kept: it is logged as rejected)."""
    seen: set[tuple[str, Any]] = set()
    for recipient in recipients:
        key = (recipient.address.lower(), recipient.user_id)
        if recipient.valid and key in seen:
            continue
        seen.add(key)
        yield recipient


def write_rows(
    template: MailLog,
    recipients: Iterable[Recipient],
    *,
    rejected_out: list[Recipient] | None = None,
) -> int:
    """Bulk-insert one row per recipient in chunks; return how many were queued."""
    chunk_size = get_setting("CHUNK_SIZE")
    domain = message_id_domain(template.from_email)
    queued = 0
    iterator = iter(recipients)
    while chunk := list(islice(iterator, chunk_size)):
        rows = []
        for recipient in chunk:
            row = _row_from(template, recipient, message_id=new_message_id(domain))
            if recipient.valid:
                queued += 1
            elif rejected_out is not None:
                rejected_out.append(recipient)
            rows.append(row)
        MailLog.objects.bulk_create(rows)
    return queued


def stored_address(address: str) -> str:
    """``address`` as the log can hold it: an over-long one (rejected anyway) is cut short."""
    limit = MailLog._meta.get_field("recipient").max_length or 320
    return address if len(address) <= limit else address[: limit - 1] + "…"


def _row_from(template: MailLog, recipient: Recipient, *, message_id: str) -> MailLog:
    row = MailLog(
        **batch_values(template),
        batch_id=template.batch_id,
        recipient=stored_address(recipient.address),
        user_id=recipient.user_id,
    )
    if recipient.valid:
        row.status = MailStatus.QUEUED
        row.message_id = message_id
    else:
        row.status = MailStatus.REJECTED
        row.error = recipient.error
    return row
