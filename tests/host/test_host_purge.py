"""A host model pointing at log rows (hidden reverse relation, SET_NULL) survives a purge."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from mailops.models import MailLog, MailStatus, MailTrigger
from tests.host.accounts.models import SupportTicket

pytestmark = pytest.mark.django_db


def test_purging_a_row_a_host_model_cites_unlinks_it_without_an_integrity_error() -> None:
    old = MailLog.objects.create(
        status=MailStatus.SENT,
        recipient="a@example.com",
        mailer="default",
        trigger=MailTrigger.SITE,
    )
    MailLog.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))
    kept = MailLog.objects.create(
        status=MailStatus.SENT,
        recipient="b@example.com",
        mailer="default",
        trigger=MailTrigger.SITE,
    )
    cites_old = SupportTicket.objects.create(subject="Where is my mail?", mail=old)
    cites_kept = SupportTicket.objects.create(subject="Thanks", mail=kept)

    out = StringIO()
    with override_settings(MAILOPS={"PURGE_PAUSE": 0}):
        call_command("purgemaillog", "--older-than", "30", "--json", stdout=out, stderr=StringIO())

    assert json.loads(out.getvalue())["deleted"] == {"sent": 1}
    cites_old.refresh_from_db()
    cites_kept.refresh_from_db()
    assert cites_old.mail_id is None
    assert cites_kept.mail_id == kept.pk
