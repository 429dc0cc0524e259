"""Log rows for a list of recipients: what bulk_create wrote, for less work per row."""

from __future__ import annotations

import itertools
from typing import Any
from unittest import mock

import pytest
from django.db import connections, router

from mailops.models import MailLog
from mailops.sending import rows
from tests.row_writes import (
    assert_writes_what_bulk_create_wrote,
    mixed_recipients,
    template_for,
    write_rows_with_bulk_create,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_chunks(settings: Any) -> int:
    settings.MAILOPS = {**settings.MAILOPS, "CHUNK_SIZE": 4}
    return 4


def test_rows_are_what_bulk_create_wrote_column_for_column(make_user, small_chunks) -> None:
    users = [make_user("ada", "ada@example.com"), make_user("bob", "Bob@Example.com")]
    recipients = mixed_recipients(users)

    assert_writes_what_bulk_create_wrote(
        template_for(users[0]), recipients, chunks=-(-len(recipients) // small_chunks)
    )


def test_a_chunk_over_the_parameter_limit_is_split_into_statements(make_user, small_chunks) -> None:
    # The multi-row VALUES insert (every database but PostgreSQL) with room
    # for 3 rows' parameters per statement: 10 recipients in chunks of 4
    # take 2 + 2 + 1 statements.
    recipients = mixed_recipients([make_user("ada", "ada@example.com")])
    assert len(recipients) == 10
    ops = connections[router.db_for_write(MailLog)].ops
    with (
        mock.patch.object(rows, "_unnest_sql", return_value=""),
        mock.patch.object(ops, "bulk_batch_size", return_value=3),
    ):
        assert_writes_what_bulk_create_wrote(template_for(None), recipients, chunks=5)


def test_a_callable_default_is_called_per_row_as_bulk_create_does(small_chunks) -> None:
    # A field added later with default=uuid.uuid4 (say) must not get one value per batch.
    field = MailLog._meta.get_field("attempts")
    numbers = itertools.count(100)

    def default() -> int:
        return next(numbers)

    template = template_for(None)
    recipients = mixed_recipients([])
    with (
        mock.patch.object(field, "default", default),
        mock.patch.object(field, "get_default", default),
    ):
        rows.write_rows(template, recipients)
        write_rows_with_bulk_create(template, recipients)

    attempts = list(
        MailLog.objects.filter(batch_id=template.batch_id)
        .order_by("id")
        .values_list("attempts", flat=True)
    )
    assert len(set(attempts)) == len(attempts) == 2 * len(recipients)
