"""What an export of the mail log contains (django-import-export), and a streamed CSV.

One resource serves both the import-export formats (CSV, XLSX, JSON, built
in memory) and :func:`iter_csv`, which streams the same columns row by row
for logs too large to hold in memory.

Exports hold what an auditor needs to match a row to a mailbox or a
provider's logs, and nothing secret: the error text was redacted when it was
written and is redacted again here (against today's configured secrets), so
a row written by older code or before a password was configured cannot leak
it. The message body is left out: it is the same for a whole batch, can be
long, and the entry's admin page shows it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import tablib
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.utils import timezone
from import_export import fields, resources
from import_export.formats import base_formats

from mailops.models import MailLog
from mailops.redaction import redact

# Spreadsheets run a cell that starts with one of these as a formula. Log
# fields hold text from outside (addresses, subjects, server replies), so
# CSV and XLSX cells get a leading apostrophe (OWASP's advice); JSON keeps
# the text as it is.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

# Rows fetched per database round trip while exporting.
EXPORT_CHUNK_SIZE = 2000

EXPORT_COLUMNS = (
    "id",
    "created_at",
    "status",
    "recipient",
    "user",
    "mailer",
    "backend",
    "from_email",
    "subject",
    "message_id",
    "esp_message_id",
    "error",
    "smtp_code",
    "trigger",
    "triggered_by",
    "triggered_by_name",
    "batch_id",
    "attempts",
    "sent_at",
    # Proof of arrival (sendtestmail --verify, "Send and verify").
    "arrival",
    "arrived_at",
    "arrival_folder",
    "authentication_results",
    # Bounces, delay notices and complaints (mailbounces, provider webhooks).
    "dsn_status",
    "remote_mta",
    "bounced_at",
    "bounce_match",
)


_USERNAME = get_user_model().USERNAME_FIELD


def spreadsheet_safe(value: Any) -> Any:
    """``value`` with a leading apostrophe if a spreadsheet would run it as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _iso(value: datetime | None) -> str:
    # ISO 8601 with the UTC offset: unambiguous for an auditor, and XLSX
    # cannot store time zone-aware datetimes natively.
    return timezone.localtime(value).isoformat() if value else ""


class MailLogResource(resources.ModelResource):
    """The exported columns, in this order."""

    # Users by their username (whatever USERNAME_FIELD a custom user model has).
    user = fields.Field(attribute=f"user__{_USERNAME}", column_name="user")
    triggered_by = fields.Field(attribute=f"triggered_by__{_USERNAME}", column_name="triggered_by")

    class Meta:
        model = MailLog
        fields = EXPORT_COLUMNS
        export_order = EXPORT_COLUMNS
        chunk_size = EXPORT_CHUNK_SIZE

    def dehydrate_created_at(self, log: MailLog) -> str:
        return _iso(log.created_at)

    def dehydrate_sent_at(self, log: MailLog) -> str:
        return _iso(log.sent_at)

    def dehydrate_arrived_at(self, log: MailLog) -> str:
        return _iso(log.arrived_at)

    def dehydrate_bounced_at(self, log: MailLog) -> str:
        return _iso(log.bounced_at)

    def dehydrate_error(self, log: MailLog) -> str:
        return redact(log.error)

    def dehydrate_batch_id(self, log: MailLog) -> str:
        return str(log.batch_id)


def _neutralised(dataset: tablib.Dataset) -> tablib.Dataset:
    safe = tablib.Dataset(headers=dataset.headers)
    for row in dataset:
        safe.append([spreadsheet_safe(value) for value in row])
    return safe


class SpreadsheetSafeCSV(base_formats.CSV):
    """CSV whose cells cannot start a spreadsheet formula."""

    def export_data(self, dataset: tablib.Dataset, **kwargs: Any) -> Any:
        return super().export_data(_neutralised(dataset), **kwargs)


class SpreadsheetSafeXLSX(base_formats.XLSX):
    """XLSX whose cells cannot start a formula."""

    def export_data(self, dataset: tablib.Dataset, **kwargs: Any) -> Any:
        return super().export_data(_neutralised(dataset), **kwargs)


EXPORT_FORMATS = [SpreadsheetSafeCSV, SpreadsheetSafeXLSX, base_formats.JSON]


class _Echo:
    """A file-like object whose ``write`` hands back what it was given (for csv.writer)."""

    def write(self, value: str) -> str:
        return value


def iter_csv(
    queryset: QuerySet[MailLog],
    *,
    resource: MailLogResource | None = None,
    rows_per_chunk: int = 500,
) -> Iterator[str]:
    """The export as CSV text, a few hundred rows per chunk, never all in memory.

    Same columns and values as the import-export CSV. The queryset is read
    with ``iterator()`` (a server-side cursor on PostgreSQL).
    """
    resource = resource or MailLogResource()
    writer = csv.writer(_Echo())
    yield writer.writerow(resource.get_export_headers())
    chunk: list[str] = []
    for log in _iter_logs(resource, queryset):
        chunk.append(writer.writerow([spreadsheet_safe(v) for v in resource.export_resource(log)]))
        if len(chunk) >= rows_per_chunk:
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)


def _iter_logs(resource: MailLogResource, queryset: QuerySet[MailLog]) -> Iterable[MailLog]:
    return resource.iter_queryset(queryset)
