"""Log rows for members whose key is a UUID: what bulk_create wrote."""

from __future__ import annotations

from typing import Any

import pytest

from tests.row_writes import assert_writes_what_bulk_create_wrote, mixed_recipients, template_for

pytestmark = pytest.mark.django_db


def test_rows_for_members_are_what_bulk_create_wrote(make_member, settings: Any) -> None:
    settings.MAILOPS = {**settings.MAILOPS, "CHUNK_SIZE": 4}
    members = [make_member("ada", "ada@host.example"), make_member("ops", "ops@host.example")]
    recipients = mixed_recipients(members)

    assert len(recipients) == 12
    assert_writes_what_bulk_create_wrote(template_for(members[1]), recipients, chunks=3)
