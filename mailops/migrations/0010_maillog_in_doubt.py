"""Rows that may have been delivered, and how far a row being sent got.

``in_doubt``: the whole message went out and its reply was lost, so it is
never retried automatically. ``wire_state``: written while a row is being
sent, so a dead worker's unattempted rows can go back to the queue. Both
have a constant default: adding them rewrites no row on PostgreSQL 11+.

On SQLite, Django adds a field by rebuilding the table, which would drop
the prefix-search indexes that migration 0005 created in SQL; a plain
``ALTER TABLE ... ADD COLUMN`` (the constant default stays as the column's
default) keeps them.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations, models

FIELDS = {
    "in_doubt": models.BooleanField(default=False, verbose_name="may have been delivered"),
    "wire_state": models.PositiveSmallIntegerField(
        default=0, editable=False, verbose_name="progress"
    ),
}
SQLITE_COLUMNS = {
    "in_doubt": "bool NOT NULL DEFAULT 0",
    "wire_state": 'smallint unsigned NOT NULL DEFAULT 0 CHECK ("wire_state" >= 0)',
}


def add_columns(apps: Any, schema_editor: Any) -> None:
    model = apps.get_model("mailops", "MailLog")
    for name in FIELDS:
        field = model._meta.get_field(name)
        if schema_editor.connection.vendor == "sqlite":
            table = schema_editor.quote_name(model._meta.db_table)
            column = schema_editor.quote_name(field.column)
            schema_editor.execute(
                f"ALTER TABLE {table} ADD COLUMN {column} {SQLITE_COLUMNS[name]}"
            )
        else:
            schema_editor.add_field(model, field)


def remove_columns(apps: Any, schema_editor: Any) -> None:
    model = apps.get_model("mailops", "MailLog")
    for name in FIELDS:
        field = model._meta.get_field(name)
        if schema_editor.connection.vendor == "sqlite":
            table = schema_editor.quote_name(model._meta.db_table)
            schema_editor.execute(
                f"ALTER TABLE {table} DROP COLUMN {schema_editor.quote_name(field.column)}"
            )
        else:
            schema_editor.remove_field(model, field)


class Migration(migrations.Migration):
    dependencies = [
        ("mailops", "0007_batch_claim_index"),
    ]

    # The fields enter the state first, so RunPython's models have them.
    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(model_name="maillog", name=name, field=field)
                for name, field in FIELDS.items()
            ],
        ),
        migrations.RunPython(add_columns, remove_columns),
    ]
