"""Test mails and the suppression list: a suppressed recipient is rejected, with why."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils import timezone

from mailops.models import MailLog, MailStatus, MailTrigger, PendingBatch, Suppression
from mailops.recipients import from_addresses
from mailops.sending import pending as pending_batches
from mailops.services import send_test_mail, send_test_mail_to_users
from mailops.suppression import suppress_address, unsuppress
from mailops.suppression.models import SuppressionReason, normalise_address
from tests.scale_fixtures import make_users

pytestmark = pytest.mark.django_db

User = get_user_model()


def _dead(address: str = "dead@example.com", **kwargs: Any) -> Suppression:
    entry = suppress_address(
        address,
        reason=SuppressionReason.HARD_BOUNCE,
        detail="5.1.1 mailbox does not exist",
        **kwargs,
    )
    # A fixed date, so the wording is known.
    Suppression.objects.filter(pk=entry.pk).update(
        created_at=timezone.make_aware(timezone.datetime(2026, 12, 1, 12, 0))
    )
    entry.refresh_from_db()
    return entry


def test_addresses_are_keyed_in_lower_case_bare() -> None:
    assert normalise_address("  Dead.Person@Example.COM ") == "dead.person@example.com"
    assert normalise_address("Dead Person <Dead@Example.com>") == "dead@example.com"
    entry = suppress_address("Dead@Example.com")
    assert entry.address == "dead@example.com"
    # A second entry for another spelling is the same entry.
    assert suppress_address("DEAD@example.com").pk == entry.pk


def test_a_suppressed_address_is_rejected_with_date_and_reason_and_the_rest_is_sent() -> None:
    _dead()

    summary = send_test_mail(
        from_addresses(["Dead@Example.com", "alive@example.com"]), trigger=MailTrigger.COMMAND
    )

    assert (summary.sent, summary.rejected, summary.suppressed) == (1, 1, 1)
    assert [m.to for m in mail.outbox] == [["alive@example.com"]]
    row = MailLog.objects.get(status=MailStatus.REJECTED)
    assert row.recipient == "Dead@Example.com"
    assert row.error == "suppressed since 2026-12-01: 5.1.1 mailbox does not exist"


def test_ignore_suppression_sends_anyway() -> None:
    _dead()
    summary = send_test_mail(
        from_addresses(["dead@example.com"]),
        trigger=MailTrigger.COMMAND,
        ignore_suppression=True,
    )
    assert (summary.sent, summary.suppressed) == (1, 0)
    assert len(mail.outbox) == 1


def test_an_expired_or_removed_entry_no_longer_suppresses() -> None:
    _dead(expires_at=timezone.now() - timedelta(minutes=1))
    suppress_address("gone@example.com")
    unsuppress(["GONE@example.com"])

    summary = send_test_mail(
        from_addresses(["dead@example.com", "gone@example.com"]), trigger=MailTrigger.API
    )

    assert (summary.sent, summary.suppressed) == (2, 0)


def test_dry_run_lists_suppressed_recipients_as_invalid_and_writes_nothing() -> None:
    _dead()
    summary = send_test_mail(
        from_addresses(["dead@example.com", "ok@example.com"]),
        trigger=MailTrigger.COMMAND,
        dry_run=True,
    )
    assert [r.address for r in summary.planned] == ["ok@example.com"]
    assert [(r.address, r.suppressed) for r in summary.invalid] == [("dead@example.com", True)]
    assert summary.suppressed == 1
    assert not MailLog.objects.exists()


def test_a_suppressed_address_does_not_abort_a_strict_batch() -> None:
    _dead()
    summary = send_test_mail(
        from_addresses(["dead@example.com", "ok@example.com"]),
        trigger=MailTrigger.COMMAND,
        abort_on_rejected=True,
    )
    assert not summary.aborted
    assert (summary.sent, summary.suppressed) == (1, 1)


def test_user_selection_rejects_suppressed_users_in_sql(recipients_users) -> None:
    _dead("BOB@example.com")
    users = User.objects.all()

    summary = send_test_mail_to_users(users, trigger=MailTrigger.ADMIN_ACTION)

    assert (summary.sent, summary.rejected, summary.suppressed) == (2, 2, 1)
    assert sorted(m.to[0] for m in mail.outbox) == ["alice@example.com", "carol@example.com"]
    bob = MailLog.objects.get(user__username="bob")
    assert bob.status == MailStatus.REJECTED
    assert bob.recipient == "bob@example.com"
    assert bob.error == "suppressed since 2026-12-01: 5.1.1 mailbox does not exist"
    assert bob.message_id == ""


def test_user_selection_wording_matches_the_address_path_for_every_reason(make_user) -> None:
    for index, reason in enumerate(SuppressionReason.values):
        make_user(f"u{index}", f"u{index}@example.com")
        suppress_address(f"u{index}@example.com", reason=reason)
    from_sql = {
        row.recipient: row.error
        for row in send_test_mail_to_users(
            User.objects.all(), trigger=MailTrigger.ADMIN_ACTION
        ).logs()
    }
    from_python = {
        row.recipient: row.error
        for row in send_test_mail(from_addresses(from_sql), trigger=MailTrigger.COMMAND).logs()
    }
    assert from_sql == from_python
    assert len(set(from_sql.values())) == len(SuppressionReason.values)


def test_user_selection_with_ignore_suppression_sends_to_everyone(recipients_users) -> None:
    _dead("bob@example.com")
    summary = send_test_mail_to_users(
        User.objects.all(), trigger=MailTrigger.ADMIN_ACTION, ignore_suppression=True
    )
    assert (summary.sent, summary.suppressed) == (3, 0)


def test_a_pending_batch_leaves_suppressed_users_out_of_the_ids(
    settings, worker_backend, django_assert_max_num_queries
) -> None:
    settings.MAILOPS = {"ASYNC_THRESHOLD": 5, "WRITE_IN_REQUEST_LIMIT": 10}
    make_users(25)
    for index in (3, 7, 11):
        suppress_address(f"user{index}@example.com", reason=SuppressionReason.COMPLAINT)

    # The selection is not loaded into Python beyond the ids the worker needs.
    with django_assert_max_num_queries(12):
        summary = send_test_mail_to_users(User.objects.all(), trigger=MailTrigger.ADMIN_ACTION)

    assert summary.handed_to_worker
    assert (summary.queued, summary.suppressed) == (22, 3)
    pending = PendingBatch.objects.get(pk=summary.batch_id)
    assert pending.expected == 22
    rejected = summary.logs().filter(status=MailStatus.REJECTED)
    assert sorted(rejected.values_list("recipient", flat=True)) == [
        "user11@example.com",
        "user3@example.com",
        "user7@example.com",
    ]
    assert {row.error[-38:] for row in rejected} == {"the recipient complained (spam report)"}

    pending_batches.write_pending_rows(summary.batch_id)
    assert summary.logs().status_counts() == {"queued": 22, "rejected": 3}
