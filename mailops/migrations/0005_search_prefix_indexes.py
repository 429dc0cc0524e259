"""Prefix-search indexes for the mail log admin, on PostgreSQL and SQLite.

The admin's search matches the start of the recipient and of the subject,
not case-sensitive. Each database needs its own kind of index for that,
and neither can be written in ``Meta.indexes``:

* PostgreSQL compares ``UPPER(col) LIKE UPPER('term%')``, which a btree
  answers only over the same ``UPPER(...)`` expression with
  ``text_pattern_ops`` (unless the database collation is "C"). The subject
  index covers its first 255 characters (``mailops.models.
  SUBJECT_PREFIX_LENGTH``): a whole subject, up to 998 characters, can
  outgrow a btree entry and would make inserts fail. Built ``CONCURRENTLY``
  (hence a non-atomic migration) so a large log keeps taking inserts.
* SQLite compares ``col LIKE 'term%'``, which its LIKE optimisation answers
  from an index on the column with the ``NOCASE`` collation.

Without them, every search reads the whole table. Other databases get
nothing here.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

# Kept literal: a migration must not change when application code does.
SUBJECT_PREFIX_LENGTH = 255

INDEXES = {
    "postgresql": {
        "maillog_recipient_prefix_idx": "UPPER({recipient}) text_pattern_ops",
        "maillog_subject_prefix_idx": (
            f"UPPER(LEFT({{subject}}, {SUBJECT_PREFIX_LENGTH})) text_pattern_ops"
        ),
    },
    "sqlite": {
        "maillog_recipient_prefix_idx": "{recipient} COLLATE NOCASE",
        "maillog_subject_prefix_idx": "{subject} COLLATE NOCASE",
    },
}
CONCURRENTLY = {"postgresql": " CONCURRENTLY"}


def create_indexes(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    model = apps.get_model("mailops", "MailLog")
    quote = schema_editor.quote_name
    columns = {name: quote(model._meta.get_field(name).column) for name in ("recipient", "subject")}
    for name, expression in INDEXES.get(vendor, {}).items():
        schema_editor.execute(
            f"CREATE INDEX{CONCURRENTLY.get(vendor, '')} IF NOT EXISTS {quote(name)}"
            f" ON {quote(model._meta.db_table)} ({expression.format(**columns)})"
        )


def drop_indexes(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    for name in INDEXES.get(vendor, {}):
        schema_editor.execute(
            f"DROP INDEX{CONCURRENTLY.get(vendor, '')} IF EXISTS {schema_editor.quote_name(name)}"
        )


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [
        ("mailops", "0004_lean_indexes"),
    ]

    operations = [
        migrations.RunPython(create_indexes, drop_indexes, elidable=False),
    ]
