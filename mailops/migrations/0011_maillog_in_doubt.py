"""Rows that may have been delivered, and how far each sending connection got.

``MailLog.in_doubt``: the whole message went out and its reply was lost, so
it is never retried automatically. ``SendingProgress``: one small row per
connection and claimed chunk, updated once per message, so a dead worker's
unattempted rows can go back to the queue (kept out of the mail log, whose
many indexes would make each of those updates costly).

On SQLite, Django adds a field by rebuilding the table, which would drop
the prefix-search indexes that migration 0005 created in SQL; a plain
``ALTER TABLE ... ADD COLUMN`` (the constant default stays as the column's
default) keeps them. On PostgreSQL 11+ the column is added without
rewriting any row.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations, models

IN_DOUBT = models.BooleanField(default=False, verbose_name="may have been delivered")


def add_in_doubt(apps: Any, schema_editor: Any) -> None:
    model = apps.get_model("mailops", "MailLog")
    field = model._meta.get_field("in_doubt")
    if schema_editor.connection.vendor == "sqlite":
        table = schema_editor.quote_name(model._meta.db_table)
        column = schema_editor.quote_name(field.column)
        schema_editor.execute(f"ALTER TABLE {table} ADD COLUMN {column} bool NOT NULL DEFAULT 0")
    else:
        schema_editor.add_field(model, field)


def remove_in_doubt(apps: Any, schema_editor: Any) -> None:
    model = apps.get_model("mailops", "MailLog")
    field = model._meta.get_field("in_doubt")
    if schema_editor.connection.vendor == "sqlite":
        table = schema_editor.quote_name(model._meta.db_table)
        column = schema_editor.quote_name(field.column)
        schema_editor.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    else:
        schema_editor.remove_field(model, field)


class Migration(migrations.Migration):
    dependencies = [
        ("mailops", "0010_maillog_triggered_by_name"),
    ]

    # The field enters the state first, so RunPython's model has it.
    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(model_name="maillog", name="in_doubt", field=IN_DOUBT),
            ],
        ),
        migrations.RunPython(add_in_doubt, remove_in_doubt),
        migrations.CreateModel(
            name="SendingProgress",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "token",
                    models.CharField(
                        db_index=True, editable=False, max_length=32, verbose_name="claim"
                    ),
                ),
                (
                    "on_wire",
                    models.BigIntegerField(editable=False, null=True, verbose_name="on the wire"),
                ),
                (
                    "done",
                    models.TextField(blank=True, default="", editable=False, verbose_name="done"),
                ),
            ],
            options={
                "verbose_name": "sending progress",
                "verbose_name_plural": "sending progress",
            },
        ),
    ]
