"""Rows that may have been delivered, and how far a row being sent got.

``in_doubt``: the whole message went out and its reply was lost, so it is
never retried automatically. ``wire_state``: written while a row is being
sent, so a dead worker's unattempted rows can go back to the queue. Both
have a constant default: adding them rewrites no row on PostgreSQL 11+.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("mailops", "0007_batch_claim_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="maillog",
            name="in_doubt",
            field=models.BooleanField(default=False, verbose_name="may have been delivered"),
        ),
        migrations.AddField(
            model_name="maillog",
            name="wire_state",
            field=models.PositiveSmallIntegerField(
                default=0, editable=False, verbose_name="progress"
            ),
        ),
    ]
