"""``manage.py loaddemo``: the demo fixture, with its mail log dated up to now.

The fixture's rows carry fixed dates, so a few weeks after they were written
the mail log's "last 14 days" chart of a fresh demo would be empty. This
loads the fixture as ``loaddata`` does, then moves every date of its mail
log rows by the same amount, so that the newest row is from now and the rows
keep their spacing. ``fixtures/demo.json`` stays an ordinary fixture.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core import serializers
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models, transaction
from django.db.models import F, Max
from django.utils import timezone
from django.utils.translation import ngettext

from mailops.models import MailLog


def demo_fixture() -> Path:
    return Path(settings.BASE_DIR) / "fixtures" / "demo.json"


class Command(BaseCommand):
    help = (
        "Load the demo fixture (users and mail log rows) and date its mail log rows "
        "relative to now: the newest row gets the current time, the others keep their "
        "distance to it. Run it again to refresh the demo."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--fixture",
            type=Path,
            default=None,
            help="The fixture file to load (default: fixtures/demo.json of the project).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["fixture"] or demo_fixture()
        if not path.is_file():
            raise CommandError(f"--fixture: {path} is not a file.")
        with transaction.atomic():
            call_command("loaddata", str(path), verbosity=options["verbosity"])
            shift = date_to_now(fixture_log_pks(path))
        if options["verbosity"] >= 1:
            days = shift.days
            self.stdout.write(
                ngettext(
                    "Mail log rows moved forward by %(days)d day.",
                    "Mail log rows moved forward by %(days)d days.",
                    days,
                )
                % {"days": days}
            )


def fixture_log_pks(path: Path) -> list[Any]:
    """The primary keys of the mail log rows the fixture holds."""
    with path.open(encoding="utf-8") as fixture:
        return [
            item.object.pk
            for item in serializers.deserialize(path.suffix.lstrip("."), fixture)
            if isinstance(item.object, MailLog)
        ]


def date_to_now(pks: list[Any]) -> timedelta:
    """Move every date of these rows so the newest ``created_at`` is now; return the shift."""
    rows = MailLog.objects.filter(pk__in=pks)
    newest = rows.aggregate(newest=Max("created_at"))["newest"]
    if newest is None:
        return timedelta(0)
    shift = timezone.now() - newest
    date_fields = [
        field.name
        for field in MailLog._meta.concrete_fields
        if isinstance(field, models.DateTimeField)
    ]
    # F() + interval leaves NULL dates NULL; update() sets updated_at as given.
    rows.update(**{name: F(name) + shift for name in date_fields})
    return shift
