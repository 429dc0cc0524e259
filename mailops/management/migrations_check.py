"""Stop a command before it touches a mail log the database does not have yet."""

from __future__ import annotations

from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS, connections, router
from django.db.migrations.executor import MigrationExecutor
from django.utils.translation import gettext as _

from mailops.models import MailLog

EXIT_USAGE = 2


def require_mailops_migrated() -> None:
    """Raise :class:`CommandError` if mailops' migrations are not all applied.

    Without this, the first write to the log ends in a traceback ("no such
    table: mailops_maillog"), the usual state of a fresh clone's database.
    """
    db = router.db_for_write(MailLog) or DEFAULT_DB_ALIAS
    executor = MigrationExecutor(connections[db])
    leaves = [key for key in executor.loader.graph.leaf_nodes() if key[0] == "mailops"]
    missing = executor.migration_plan(leaves)
    if missing:
        name = connections[db].settings_dict["NAME"]
        raise CommandError(
            _(
                "The database %(name)s has unapplied migrations (the mail log needs them): "
                "run `python manage.py migrate` first."
            )
            % {"name": name},
            returncode=EXIT_USAGE,
        )
