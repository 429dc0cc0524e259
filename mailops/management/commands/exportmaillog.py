"""``manage.py exportmaillog``: the mail log as CSV or JSON lines, for auditors (no browser)."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from mailops.exports.copy_csv import copy_supported, iter_copy_csv
from mailops.exports.resources import EXPORT_CHUNK_SIZE, MailLogResource, iter_csv
from mailops.management.migrations_check import require_mailops_migrated
from mailops.models import MailLog, MailStatus, MailTrigger
from mailops.retention.policy import local_midnight

EXIT_USAGE = 2


def _moment(value: str, option: str, *, end: bool) -> datetime:
    """A date (local midnight; the next one for --until) or an ISO 8601 time."""
    moment: datetime | None = None
    try:
        day: date | None = parse_date(value) if len(value) == 10 else None
        if day is None:
            moment = parse_datetime(value)
    except ValueError:  # well formed, but no such day or time
        day = moment = None
    if day is not None:
        return local_midnight(day + timedelta(days=1) if end else day)
    if moment is None:
        raise CommandError(
            _("%(option)s %(value)r is not a date (YYYY-MM-DD) or an ISO 8601 time.")
            % {"option": option, "value": value},
            returncode=EXIT_USAGE,
        )
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


class Command(BaseCommand):
    help = (
        "Write the mail log (filtered like the admin's list) as CSV or JSON lines, "
        "to stdout or a file. Same columns and redaction as the admin's export; on "
        "PostgreSQL the CSV is written by the database (COPY)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--status",
            action="append",
            choices=MailStatus.values,
            help="Only this status (repeatable).",
        )
        parser.add_argument(
            "--mailer", action="append", help="Only this mailer alias (repeatable)."
        )
        parser.add_argument(
            "--trigger",
            action="append",
            choices=MailTrigger.values,
            help="Only this trigger (repeatable).",
        )
        parser.add_argument(
            "--since", help="Rows created at or after this date (local midnight) or ISO time."
        )
        parser.add_argument(
            "--until", help="Rows created before the end of this date, or before this ISO time."
        )
        parser.add_argument("--batch", help="Only the rows of this batch id.")
        parser.add_argument(
            "--search",
            help="Recipient or subject starting with the text, or this Message-ID "
            "(the admin's search).",
        )
        parser.add_argument(
            "--format", choices=("csv", "jsonl"), default="csv", help="Output format (default csv)."
        )
        parser.add_argument("--output", metavar="FILE", help="Write to FILE instead of stdout.")

    def handle(self, *args: Any, **options: Any) -> None:
        queryset = self._queryset(options)
        require_mailops_migrated()
        if options["format"] == "csv":
            chunks: Iterator[bytes] = (
                iter_copy_csv(queryset)
                if copy_supported(queryset)
                else (text.encode() for text in iter_csv(queryset))
            )
        else:
            chunks = _iter_jsonl(queryset)
        if options["output"]:
            try:
                with open(options["output"], "wb") as target:
                    _write(chunks, target)
            except OSError as error:
                raise CommandError(
                    _("Cannot write %(file)s: %(reason)s")
                    % {"file": options["output"], "reason": error.strerror},
                    returncode=EXIT_USAGE,
                ) from None
        else:
            stdout: Any = getattr(self.stdout, "_out", sys.stdout)
            binary = getattr(stdout, "buffer", None)
            if binary is not None:
                _write(chunks, binary)
                binary.flush()
            else:  # a text stream (a test's StringIO)
                for chunk in chunks:
                    stdout.write(chunk.decode())

    def _queryset(self, options: dict[str, Any]) -> Any:
        # The users joined, as the admin's export reads them (list_select_related).
        queryset: Any = MailLog.objects.select_related("user", "triggered_by")
        if options["status"]:
            queryset = queryset.filter(status__in=options["status"])
        if options["mailer"]:
            queryset = queryset.filter(mailer__in=options["mailer"])
        if options["trigger"]:
            queryset = queryset.filter(trigger__in=options["trigger"])
        if options["since"]:
            queryset = queryset.filter(
                created_at__gte=_moment(options["since"], "--since", end=False)
            )
        if options["until"]:
            queryset = queryset.filter(
                created_at__lt=_moment(options["until"], "--until", end=True)
            )
        if options["batch"]:
            try:
                batch = uuid.UUID(options["batch"])
            except ValueError:
                raise CommandError(
                    _("--batch %(value)r is not a batch id (a UUID).")
                    % {"value": options["batch"]},
                    returncode=EXIT_USAGE,
                ) from None
            queryset = queryset.filter(batch_id=batch)
        if options["search"] and options["search"].strip():
            queryset = queryset.search(options["search"].strip())
        return queryset


def _write(chunks: Iterator[bytes], target: IO[bytes]) -> None:
    for chunk in chunks:
        target.write(chunk)


def _iter_jsonl(queryset: Any) -> Iterator[bytes]:
    """One JSON object per line, the CSV's columns and values (no spreadsheet apostrophes)."""
    resource = MailLogResource()
    headers = resource.get_export_headers()
    lines: list[str] = []
    for log in resource.iter_queryset(queryset):
        values = resource.export_resource(log)
        lines.append(json.dumps(dict(zip(headers, values, strict=True)), ensure_ascii=False))
        if len(lines) >= EXPORT_CHUNK_SIZE:
            yield ("\n".join(lines) + "\n").encode()
            lines = []
    if lines:
        yield ("\n".join(lines) + "\n").encode()
