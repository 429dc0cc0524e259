"""The mail log's CSV export straight from PostgreSQL: ``COPY (SELECT ...) TO STDOUT``.

The same bytes as :func:`mailops.exports.resources.iter_csv` (the streamed
export) for the same rows, written by the database instead of a Python loop
over model instances: the columns, the ISO 8601 local times with their UTC
offset, the spreadsheet-formula apostrophe and the empty cells are all built
in the ``SELECT``; the database's CSV quoting is the ``csv`` module's
(``QUOTE_MINIMAL``) once empty strings are NULLs.

Redaction stays in Python, where :func:`mailops.redaction.redact` lives
(configured secrets, URL credentials, credential shapes; not expressible in
SQL): the error text was redacted when it was written, and each row with a
non-empty error is redacted again here. The ``SELECT`` marks those rows
(a first ``t``/``f`` column), so only they are parsed and rewritten; every
other row is passed through as the database wrote it.

:func:`copy_supported` says when this applies (PostgreSQL through psycopg
3, a named time zone, no thousand separators); elsewhere callers use the
streamed export.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections
from django.db.models import CharField, F, Func, QuerySet, TextField
from django.utils import timezone

from mailops.exports.resources import EXPORT_COLUMNS, MailLogResource, spreadsheet_safe
from mailops.models import MailLog
from mailops.redaction import redact

try:
    from django.db.backends.postgresql.psycopg_any import is_psycopg3
except ImportError:  # neither psycopg nor psycopg2 installed: not PostgreSQL here
    is_psycopg3 = False

# Rows handed on per chunk (one write to the client or the file each).
ROWS_PER_CHUNK = 2000

# The index of "error" among the exported columns (after the flag column).
_ERROR = EXPORT_COLUMNS.index("error")

_CSV_LINE_END = b"\r\n"


class _Text(Func):
    """A text cell as the streamed export writes it: empty is NULL, formulas get an apostrophe."""

    # chr(9), chr(13): tab and carriage return, spreadsheet_safe()'s FORMULA_PREFIXES.
    template = (
        "NULLIF(CASE WHEN left((%(expressions)s)::text, 1) IN ('=', '+', '-', '@', chr(9), "
        "chr(13)) THEN '''' || (%(expressions)s)::text ELSE (%(expressions)s)::text END, '')"
    )
    output_field = CharField()


class _Raw(Func):
    """A text cell left as it is (empty is NULL); the error, which Python redacts first."""

    template = "NULLIF((%(expressions)s)::text, '')"
    output_field = CharField()


class _Number(Func):
    template = "(%(expressions)s)::text"
    output_field = CharField()


class _LocalTime(Func):
    """``timezone.localtime(value).isoformat()``: microseconds only when not zero."""

    output_field = CharField()

    def __init__(self, expression: Any, zone: str) -> None:
        # The zone is a ZoneInfo key (letters, digits, "/", "_", "-", "+"),
        # never user input; quoted as a SQL literal all the same.
        local = f"%(expressions)s AT TIME ZONE '{zone.replace(chr(39), chr(39) * 2)}'"
        offset = f"extract(epoch from ({local}) - (%(expressions)s AT TIME ZONE 'UTC'))::integer"
        self.template = (
            f"to_char({local}, 'YYYY-MM-DD\"T\"HH24:MI:SS')"
            " || CASE WHEN date_trunc('second', %(expressions)s) <> %(expressions)s"
            f" THEN to_char({local}, '.US') ELSE '' END"
            f" || CASE WHEN {offset} < 0 THEN '-' ELSE '+' END"
            f" || lpad((abs({offset}) / 3600)::text, 2, '0')"
            f" || ':' || lpad((mod(abs({offset}), 3600) / 60)::text, 2, '0')"
            f" || CASE WHEN mod(abs({offset}), 60) <> 0"
            f" THEN ':' || lpad(mod(abs({offset}), 60)::text, 2, '0') ELSE '' END"
        )
        super().__init__(expression)


def copy_supported(queryset: QuerySet[MailLog]) -> bool:
    """Whether :func:`iter_copy_csv` can write ``queryset``'s export here.

    PostgreSQL through psycopg 3 (its copy support), a named time zone
    (the database converts the times) and no thousand separator (the
    streamed export writes numbers with ``number_format``).
    """
    return (
        connections[queryset.db].vendor == "postgresql"
        and is_psycopg3
        and isinstance(timezone.get_current_timezone(), ZoneInfo)
        and not settings.USE_THOUSAND_SEPARATOR
    )


def _columns(zone: str) -> dict[str, Any]:
    username = get_user_model().USERNAME_FIELD
    columns: dict[str, Any] = {}
    for name in EXPORT_COLUMNS:
        if name in ("user", "triggered_by"):
            value: Any = _Text(F(f"{name}__{username}"))
        elif name in ("created_at", "sent_at", "arrived_at", "bounced_at"):
            value = _LocalTime(F(name), zone)
        elif name == "error":
            value = _Raw(F(name))
        elif name == "batch_id":
            value = _Number(F(name))
        elif isinstance(MailLog._meta.get_field(name), CharField | TextField):
            value = _Text(F(name))
        else:
            value = _Number(F(name))
        columns[f"export_{name}"] = value
    return columns


def copy_statement(queryset: QuerySet[MailLog]) -> tuple[str, tuple[Any, ...]]:
    """The ``COPY`` statement for ``queryset`` (filters and order kept) and its parameters."""
    zone = timezone.get_current_timezone_name()
    columns = _columns(zone)
    flag = Func(F("error"), template="CASE WHEN %(expressions)s <> '' THEN 't' ELSE 'f' END")
    selected = queryset.annotate(
        export_flag=Func(flag, template="%(expressions)s", output_field=CharField()), **columns
    ).values_list("export_flag", *columns)
    sql, params = selected.query.get_compiler(using=queryset.db).as_sql()
    return f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", tuple(params)


def iter_copy_csv(
    queryset: QuerySet[MailLog], *, rows_per_chunk: int = ROWS_PER_CHUNK
) -> Iterator[bytes]:
    """The export of ``queryset`` as UTF-8 CSV bytes, a chunk of rows at a time."""
    yield _line(MailLogResource().get_export_headers())
    statement, params = copy_statement(queryset)
    chunk: list[bytes] = []
    with (
        connections[queryset.db].cursor() as cursor,
        cursor.cursor.copy(statement, params) as copy,
    ):
        # One block per row: PostgreSQL sends each row in its own message.
        for block in copy:
            row = bytes(block)
            if row.startswith(b"f,"):
                chunk.append(row[2:-1] + _CSV_LINE_END)
            else:
                chunk.append(_redacted(row))
            if len(chunk) >= rows_per_chunk:
                yield b"".join(chunk)
                chunk = []
    if chunk:
        yield b"".join(chunk)


def _line(values: list[Any]) -> bytes:
    text = io.StringIO()
    csv.writer(text).writerow(values)
    return text.getvalue().encode()


def _redacted(row: bytes) -> bytes:
    """A row with an error: redact and neutralise that cell in Python, rewrite the line."""
    values = next(csv.reader([row[:-1].decode()]))[1:]
    values[_ERROR] = spreadsheet_safe(redact(values[_ERROR]))
    return _line(values)
