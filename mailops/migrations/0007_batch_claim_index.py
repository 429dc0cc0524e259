"""The batch index gets the id last, so a delivery run's claim reads only what it takes.

A claim asks for a batch's queued rows in id order, ``LIMIT n``. Over
``(batch_id, status)`` PostgreSQL had to sort every queued row of the
batch first, so each chunk of a 100,000-row batch cost more than the last.
The new index is built before the old one goes, so batch pages and claims
always have one. (A plain CREATE INDEX holds off writes while it is built:
a few seconds per million rows.)
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("mailops", "0006_pending_batch"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="maillog",
            index=models.Index(
                fields=["batch_id", "status", "id"], name="maillog_batch_status_idx"
            ),
        ),
        migrations.RemoveIndex(
            model_name="maillog",
            name="maillog_batch_idx",
        ),
    ]
