"""Writing a batch's log rows: from recipients in bulk, or from a user selection in SQL.

:func:`write_rows` inserts one row per recipient with one multi-row
``INSERT`` per chunk. The columns every row of a batch shares are converted
for the database once per call, not once per row as ``bulk_create`` does
(its per-row, per-field compilation cost more than the insert itself); on
PostgreSQL a chunk's own columns go in as arrays (``UNNEST``), as
``bulk_create`` sends them there. For a user selection,
``INSERT INTO mailops_maillog (...) SELECT ... FROM auth_user WHERE ...``
creates one row per selected user without loading a single user into
Python: 100,000 users cost one statement, not 100,000 objects. Every
MailLog column gets a value: the template's, or the field's default, so
a field added to the model later needs no change here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from itertools import islice
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import CharField, F, Field, QuerySet, Value
from django.db.models.expressions import DatabaseDefault
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from mailops import recipients
from mailops.conf import get_setting, stored_language
from mailops.models import MailLog, MailStatus, batch_values
from mailops.recipients import Recipient
from mailops.sending.composition import (
    message_id_domain,
    new_message_id,
    user_message_id_parts,
)
from mailops.suppression.selection import only_suppressed, rejection_subquery


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
        # The same reason as recipients.no_address_error(), built around the username in SQL.
        with stored_language():
            reason_before, _slot, reason_after = recipients.no_address_template().partition(
                "%(username)s"
            )
        columns.update(
            status=MailStatus.REJECTED,
            recipient=Value(""),
            error=Concat(
                Value(reason_before),
                F(model.USERNAME_FIELD),
                Value(reason_after),
                output_field=CharField(),
            ),
        )

    return _insert_selection(selection, columns, template)


def insert_suppressed_user_rows(users: QuerySet[Any], template: MailLog) -> int:
    """Insert a ``rejected`` row for each selected user whose address is suppressed.

    The error names the entry's date and reason, as for a typed address
    ("suppressed since 2026-12-01: 5.1.1 mailbox does not exist"), built by
    the database: no user is loaded into Python. Returns the rows written.
    """
    selection = only_suppressed(recipients.with_address(recipients.annotate_address(users)))
    now = timezone.now()
    columns: dict[str, Any] = {
        "created_at": now,
        "updated_at": now,
        "user": F("pk"),
        "status": MailStatus.REJECTED,
        "recipient": F(recipients.ADDRESS_ANNOTATION),
        "error": rejection_subquery(),
    }
    return _insert_selection(selection, columns, template)


def _insert_selection(selection: QuerySet[Any], columns: dict[str, Any], template: MailLog) -> int:
    """``INSERT INTO <log> SELECT ...``: one row per row of ``selection``.

    ``columns`` gives the per-user values (expressions over the selection);
    every other column takes the template's value or the field's default.
    """
    fields = insert_fields()
    expressions: dict[str, Any] = {}
    for field in fields:
        value = columns.get(field.name, _template_value(template, field))
        alias = f"_mailops_{field.attname}"
        expressions[alias] = (
            value if hasattr(value, "resolve_expression") else Value(value, output_field=field)
        )
    select = selection.annotate(**expressions).values(*expressions)
    sql, params = select.query.sql_with_params()
    connection = connections[select.db]
    with connection.cursor() as cursor:
        cursor.execute(f"{insert_into(connection, fields)} {sql}", params)
        return int(cursor.rowcount)


def insert_fields() -> list[Field[Any, Any]]:
    """The ``MailLog`` fields an insert names: all stored ones but the key (as ``bulk_create``)."""
    return [
        field
        for field in MailLog._meta.concrete_fields
        if not field.primary_key and not field.generated
    ]


def insert_into(connection: BaseDatabaseWrapper, fields: list[Field[Any, Any]]) -> str:
    """``INSERT INTO <log table> (<the fields' columns>)``, quoted for ``connection``."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column or field.attname) for field in fields)
    return f"INSERT INTO {quote(MailLog._meta.db_table)} ({columns})"


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
    """Insert one row per recipient in chunks; return how many were queued.

    The rows hold what ``MailLog.objects.bulk_create`` would write for
    ``MailLog(**batch_values(template), batch_id=template.batch_id, ...)``
    per recipient: an invalid one is logged as ``rejected`` with its error
    (and appended to ``rejected_out``), a valid one as ``queued`` with a
    new Message-ID.
    """
    chunk_size = get_setting("CHUNK_SIZE")
    domain = message_id_domain(template.from_email)
    insert = _BatchInsert(template)
    queued = 0
    iterator = iter(recipients)
    while chunk := list(islice(iterator, chunk_size)):
        rows = []
        for recipient in chunk:
            if recipient.valid:
                queued += 1
                rows.append(_recipient_values(recipient, message_id=new_message_id(domain)))
            else:
                if rejected_out is not None:
                    rejected_out.append(recipient)
                rows.append(_recipient_values(recipient, message_id=""))
        insert.write(rows)
    return queued


def stored_address(address: str) -> str:
    """``address`` as the log can hold it: an over-long one (rejected anyway) is cut short."""
    limit = MailLog._meta.get_field("recipient").max_length or 320
    return address if len(address) <= limit else address[: limit - 1] + "…"


def _recipient_values(recipient: Recipient, *, message_id: str) -> dict[str, Any]:
    """The values of the columns that differ from one recipient's row to the next."""
    values = {"recipient": stored_address(recipient.address), "user_id": recipient.user_id}
    if recipient.valid:
        values.update(status=MailStatus.QUEUED, message_id=message_id, error="")
    else:
        values.update(status=MailStatus.REJECTED, message_id="", error=recipient.error)
    return values


# The attributes _recipient_values() sets: converted for every row.
RECIPIENT_ATTNAMES = ("recipient", "user_id", "status", "message_id", "error")


class _BatchInsert:
    """Multi-row inserts of one batch's rows, the batch-wide values converted once.

    Each column gets what ``bulk_create`` would send for it: the field's
    ``pre_save`` value through its ``get_db_prep_save``. A column is converted
    once per call when its value comes from the template or a plain default;
    once per chunk for ``auto_now``/``auto_now_add`` (``bulk_create`` reads
    the clock for each row: its rows of one chunk differ by microseconds
    where these share one time); per row for the recipient's columns and for a
    callable default that no template value replaces (``bulk_create`` calls
    it per instance: a per-row token stays unique).

    On PostgreSQL a chunk is one ``INSERT ... SELECT <batch values>, * FROM
    UNNEST(<one array per row column>)``, the way ``bulk_create`` inserts
    there (a statement of a few dozen parameters that the driver and the
    planner handle faster than a long ``VALUES`` list); elsewhere one
    ``INSERT ... VALUES (...), (...)`` within the database's parameter limit.
    """

    def __init__(self, template: MailLog) -> None:
        self.using = router.db_for_write(MailLog)
        self.connection = connections[self.using]
        given = {**batch_values(template), "batch_id": template.batch_id}
        # The instance bulk_create would get, less what each recipient sets.
        self.prototype = MailLog(**given)
        self.shared_values: list[Any] = []
        shared: list[Field[Any, Any]] = []
        self.clocked: list[Field[Any, Any]] = []
        self.own: list[Field[Any, Any]] = []
        self.defaulted: list[Field[Any, Any]] = []
        for field in insert_fields():
            if field.attname in RECIPIENT_ATTNAMES:
                self.own.append(field)
            elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                self.clocked.append(field)
            elif field.attname not in given and field.has_default() and callable(field.default):
                self.defaulted.append(field)
            else:
                value = field.pre_save(self.prototype, add=True)
                if isinstance(value, DatabaseDefault):
                    # DEFAULT in every row: bulk_create leaves such a column out.
                    continue
                shared.append(field)
                self.shared_values.append(field.get_db_prep_save(value, self.connection))
        # The columns in this order: the batch's, the chunk's timestamps, each row's.
        self.fields = shared + self.clocked + self.own + self.defaulted
        self.head = insert_into(self.connection, self.fields)
        self.unnest = _unnest_sql(self.connection, shared + self.clocked, self.own + self.defaulted)

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Insert ``rows``, each a dict of the :data:`RECIPIENT_ATTNAMES` values."""
        connection = self.connection
        shared = self.shared_values + [
            field.get_db_prep_save(field.pre_save(self.prototype, add=True), connection)
            for field in self.clocked
        ]
        own = [
            [field.get_db_prep_save(values[field.attname], connection) for field in self.own]
            + [field.get_db_prep_save(field.get_default(), connection) for field in self.defaulted]
            for values in rows
        ]
        if self.unnest:
            with connection.cursor() as cursor:
                cursor.execute(self.unnest, [*shared, *map(list, zip(*own, strict=True))])
            return
        params = [shared + values for values in own]
        # The database's limit on parameters per statement (SQLite's is settable).
        size = max(connection.ops.bulk_batch_size(self.fields, params), 1)
        batches = [params[start : start + size] for start in range(0, len(params), size)]
        # Several statements for one chunk: all or none, as bulk_create does.
        atomic = transaction.atomic(using=self.using, savepoint=False)
        with atomic if len(batches) > 1 else nullcontext(), connection.cursor() as cursor:
            # A row of placeholders per row (django-stubs says a string per row).
            row_sql: Any = ["%s"] * len(self.fields)
            for batch in batches:
                values_sql = connection.ops.bulk_insert_sql(self.fields, [row_sql] * len(batch))
                cursor.execute(
                    f"{self.head} {values_sql}", [value for row in batch for value in row]
                )


def _unnest_sql(
    connection: BaseDatabaseWrapper,
    shared: list[Field[Any, Any]],
    own: list[Field[Any, Any]],
) -> str:
    """The PostgreSQL insert of one value per ``shared`` field and an array per ``own`` one.

    Empty where ``bulk_create`` would not use UNNEST either: another database,
    or a field type PostgreSQL's backend does not know (an array, a geometry).
    """
    fields = shared + own
    if connection.vendor != "postgresql" or any(
        getattr(field, "target_field", field).get_internal_type() not in connection.data_types
        for field in fields
    ):
        return ""
    # Without the length (varchar, not varchar(255)) as bulk_create does: the
    # column's own type then refuses an over-long value, nothing is cut.
    types = [str(field.db_type(connection)).split("(")[0] for field in fields]
    values = [f"(%s)::{db_type}" for db_type in types[: len(shared)]]
    arrays = [f"(%s)::{db_type}[]" for db_type in types[len(shared) :]]
    select = ", ".join([*values, "*"])
    return f"{insert_into(connection, fields)} SELECT {select} FROM UNNEST({', '.join(arrays)})"  # noqa: S608 - names and types from model metadata
