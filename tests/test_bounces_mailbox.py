"""``mailbounces`` over a real Dovecot: formats, matching, complaints, auto-replies, bad input."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from django.utils import timezone

from mailops.bounces.models import MailboxCursor, UnmatchedBounce
from mailops.bounces.tasks import read_bounces_task
from mailops.models import MailEvent, MailLog, MailStatus, MailTrigger
from mailops.suppression.models import Suppression, SuppressionReason
from tests.imap_server import DovecotServer
from tests.test_bounces_postfix import maildir_state, run_mailbounces
from tests.test_bounces_reports import ARF_REPORT, ORIGINAL_ID, VACATION_REPLY, fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailbox(settings: Any, bounce_mailbox: DovecotServer) -> DovecotServer:
    settings.MAILOPS = {**settings.MAILOPS, "MAILBOXES": {"default": bounce_mailbox.mailbox()}}
    return bounce_mailbox


def sent_row(recipient: str, *, message_id: str = "", mailer: str = "default") -> MailLog:
    return MailLog.objects.create(
        recipient=recipient,
        status=MailStatus.SENT,
        mailer=mailer,
        trigger=MailTrigger.COMMAND,
        message_id=message_id,
        sent_at=timezone.now(),
    )


def test_a_gmail_bounce_without_our_message_id_matches_by_recipient_and_time_as_weaker(
    mailbox: DovecotServer,
) -> None:
    row = sent_row("userx@example.com", message_id="<other@example.test>")
    mailbox.deliver(fixture("gmail_failure.eml"))

    code, out, err = run_mailbounces("--json")

    assert code == 0, err
    [line] = json.loads(out)["mailboxes"][0]["reports"]
    assert (line["log_id"], line["matched_by"], line["kind"]) == (
        row.pk,
        "recipient_time",
        "bounced",
    )
    row.refresh_from_db()
    assert (row.status, row.bounce_match) == (MailStatus.BOUNCED, "recipient_time")


@pytest.mark.parametrize(
    ("name", "recipient", "status"),
    [
        ("exchange_ndr.eml", "userx@example.com", MailStatus.BOUNCED),
        ("yahoo.eml", "userx@example.com", MailStatus.BOUNCED),
        ("qmail.eml", "userx@example.de", MailStatus.BOUNCED),
        ("gmail_delay.eml", "userx@example.com", MailStatus.DEFERRED),
    ],
)
def test_other_providers_formats_move_their_entry(
    mailbox: DovecotServer, name: str, recipient: str, status: str
) -> None:
    row = sent_row(recipient)
    mailbox.deliver(fixture(name))

    code, _out, err = run_mailbounces()

    assert code == 0, err
    row.refresh_from_db()
    assert row.status == status


def test_a_bounce_for_mail_mailops_never_sent_is_kept_as_unmatched(mailbox: DovecotServer) -> None:
    mailbox.deliver(fixture("exim.eml"))

    code, out, err = run_mailbounces()

    assert code == 0, err
    assert "matches no" not in out
    assert "kept as an unmatched report" in out
    unmatched = UnmatchedBounce.objects.get()
    assert (unmatched.kind, unmatched.recipient, unmatched.dsn_status) == (
        "bounced",
        "userx@its.example.nl",
        "5.1.1",
    )
    assert unmatched.original_message_id == "<19990920022322.A19735@stereo.rotzorg.org>"
    # Read once: a second run records it no second time.
    run_mailbounces()
    assert UnmatchedBounce.objects.count() == 1


def test_an_arf_complaint_makes_the_entry_complained(mailbox: DovecotServer) -> None:
    row = sent_row("someone@example.net", message_id=ORIGINAL_ID)
    mailbox.deliver(ARF_REPORT.encode())

    code, _out, err = run_mailbounces()

    assert code == 0, err
    row.refresh_from_db()
    assert (row.status, row.bounce_match) == (MailStatus.COMPLAINED, "message_id")
    assert row.error == "complaint: Feedback-Type: abuse (SomeGenerator/1.0)"
    event = MailEvent.objects.get(log=row)
    assert event.event_type == "complained"
    # A complaint puts the address on the list at once.
    entry = Suppression.objects.get()
    assert (entry.address, entry.reason) == ("someone@example.net", SuppressionReason.COMPLAINT)
    assert (entry.source_log, entry.source_event) == (row, event)


def expired_in_the_queue(recipient: str, message_id: str) -> bytes:
    """What Postfix mails when a message waited out ``maximal_queue_lifetime``.

    The server never refused it for good: ``Action: failed`` with the last
    temporary status (4.2.2, mailbox full), a soft bounce.
    """
    return f"""\
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: ops@example.test
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: failed
Status: 4.2.2
Diagnostic-Code: smtp; 452 4.2.2 mailbox full

--B
Content-Type: text/rfc822-headers

From: ops@example.test
To: {recipient}
Subject: mailops test mail
Message-ID: {message_id}

--B--
""".replace("\n", "\r\n").encode()


def test_soft_bounces_read_from_the_mailbox_suppress_at_the_limit(
    settings: Any, mailbox: DovecotServer
) -> None:
    settings.MAILOPS = {**settings.MAILOPS, "SOFT_BOUNCE_LIMIT": 2}
    first = sent_row("full@example.net", message_id="<soft.1@example.test>")
    second = sent_row("full@example.net", message_id="<soft.2@example.test>")
    mailbox.deliver(expired_in_the_queue("full@example.net", "<soft.1@example.test>"))

    code, _out, err = run_mailbounces()

    assert code == 0, err
    first.refresh_from_db()
    # Given up on: bounced, but softly, so one is not enough.
    assert (first.status, first.dsn_status) == (MailStatus.BOUNCED, "4.2.2")
    assert not Suppression.objects.exists()

    mailbox.deliver(expired_in_the_queue("full@example.net", "<soft.2@example.test>"))
    code, _out, err = run_mailbounces()

    assert code == 0, err
    entry = Suppression.objects.get()
    assert (entry.address, entry.reason) == ("full@example.net", SuppressionReason.SOFT_BOUNCES)
    assert entry.source_log == second
    assert entry.detail == "452 4.2.2 mailbox full"


def test_a_vacation_reply_changes_nothing(mailbox: DovecotServer) -> None:
    row = sent_row("someone@example.net", message_id=ORIGINAL_ID)
    mailbox.deliver(VACATION_REPLY.encode())

    code, out, err = run_mailbounces("-v", "2")

    assert code == 0, err
    assert "an automatic reply (vacation), not a bounce: nothing changed" in out
    row.refresh_from_db()
    assert row.status == MailStatus.SENT
    assert not MailEvent.objects.exists()
    assert not UnmatchedBounce.objects.exists()


def test_a_malformed_report_is_listed_kept_and_nothing_is_marked(mailbox: DovecotServer) -> None:
    row = sent_row("gone@example.net", message_id=ORIGINAL_ID)
    mailbox.deliver(
        b"From: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"this is not a field\r\n\r\n--b--\r\n"
    )
    before = maildir_state(mailbox)

    code, out, err = run_mailbounces()

    assert code == 1
    assert "a delivery report without a readable delivery-status part" in out
    assert err.endswith("1 message could not be read.")
    row.refresh_from_db()
    assert row.status == MailStatus.SENT
    assert UnmatchedBounce.objects.get().kind == "unreadable"
    assert maildir_state(mailbox) == before


def test_a_30_mb_message_is_skipped_with_a_note_and_left_as_it_was(mailbox: DovecotServer) -> None:
    huge = (
        b"From: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        b"Content-Type: text/plain\r\n\r\n" + (b"x" * 998 + b"\r\n") * 30_000
    )
    mailbox.deliver(huge)
    before = maildir_state(mailbox)

    code, out, err = run_mailbounces()

    assert code == 1
    assert (
        "bytes, more than BOUNCE_MAX_MESSAGE_SIZE (10,485,760); left in the mailbox unread" in out
    )
    assert "could not be read" in err
    unmatched = UnmatchedBounce.objects.get()
    assert unmatched.kind == "unreadable"
    assert "left in the mailbox unread" in unmatched.diagnostic
    assert maildir_state(mailbox) == before


def test_an_unreachable_mailbox_is_one_clear_line_and_exit_1(settings: Any) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    box = {
        "host": "127.0.0.1",
        "port": port,
        "username": "ops",
        "password": "pw-4412",
        "ssl": False,
    }
    settings.MAILOPS = {**settings.MAILOPS, "MAILBOXES": {"default": box}}

    code, _out, err = run_mailbounces()

    assert code == 1
    assert err.startswith(f"ops@127.0.0.1:{port}: cannot connect to IMAP server 127.0.0.1:{port}")
    assert "pw-4412" not in err
    assert not MailboxCursor.objects.exists()


def test_a_mailer_without_a_mailbox_is_a_usage_error(settings: Any) -> None:
    settings.MAILOPS = {**settings.MAILOPS, "MAILBOXES": {}}
    code, _out, err = run_mailbounces("--using", "outbox")
    assert code == 2
    assert "mailer 'outbox' has no mailbox to read bounces from: set MAILBOX_OUTBOX_URL" in err
    code, _out, err = run_mailbounces("--since", "yesterday")
    assert (code, err) == (2, "--since 'yesterday' is not a date; write it as YYYY-MM-DD.")


def test_a_new_uidvalidity_reads_the_folder_again_without_counting_twice(
    mailbox: DovecotServer,
) -> None:
    row = sent_row("someone@example.net", message_id=ORIGINAL_ID)
    mailbox.deliver(ARF_REPORT.encode())
    run_mailbounces()
    # As if the folder had been recreated: the UIDs remembered mean nothing now.
    MailboxCursor.objects.update(uidvalidity=1)

    code, out, _err = run_mailbounces("--json")

    assert code == 0
    [line] = json.loads(out)["mailboxes"][0]["reports"]
    assert (line["changed"], line["note"]) == (False, "already recorded")
    assert MailEvent.objects.filter(log=row).count() == 1
    assert MailboxCursor.objects.get(folder="INBOX").uidvalidity != 1


def test_move_to_moves_only_the_reports_it_read(
    mailbox: DovecotServer,
) -> None:
    row = sent_row("someone@example.net", message_id=ORIGINAL_ID)
    mailbox.deliver(ARF_REPORT.encode())
    mailbox.deliver(b"From: friend@example.net\r\nSubject: lunch?\r\n\r\nnoon?\r\n")

    code, out, err = run_mailbounces("--move-to", "Bulk")

    assert code == 0, err
    assert ", 1 moved." in out
    row.refresh_from_db()
    assert row.status == MailStatus.COMPLAINED
    folders = {name.split("/")[0] for name in maildir_state(mailbox)}
    assert folders == {"Maildir", ".Bulk"}


def test_the_task_reads_every_mailer_s_mailbox(mailbox: DovecotServer) -> None:
    row = sent_row("someone@example.net", message_id=ORIGINAL_ID)
    mailbox.deliver(ARF_REPORT.encode())

    [result] = read_bounces_task.call()

    assert result["reports"][0]["log_id"] == row.pk
    row.refresh_from_db()
    assert row.status == MailStatus.COMPLAINED


def test_mailers_sharing_one_account_read_it_once_and_match_each_other_s_mail(
    settings: Any, bounce_mailbox: DovecotServer
) -> None:
    box = bounce_mailbox.mailbox()
    settings.MAILOPS = {**settings.MAILOPS, "MAILBOXES": {"default": box, "outbox": box}}
    row = sent_row("userx@example.com", mailer="outbox")
    bounce_mailbox.deliver(fixture("gmail_failure.eml"))

    code, out, err = run_mailbounces("--all-mailers", "--json")

    assert code == 0, err
    [only] = json.loads(out)["mailboxes"]
    assert only["reports"][0]["log_id"] == row.pk


def test_since_reads_old_messages_again_without_counting_them_twice(
    mailbox: DovecotServer,
) -> None:
    row = sent_row("someone@example.net", message_id=ORIGINAL_ID)
    mailbox.deliver(ARF_REPORT.encode())
    run_mailbounces()

    code, out, _err = run_mailbounces("--since", timezone.localdate().isoformat(), "--json")

    assert code == 0
    [box] = json.loads(out)["mailboxes"]
    assert box["messages_read"] == 1
    assert box["reports"][0]["note"] == "already recorded"
    assert MailEvent.objects.filter(log=row).count() == 1


def test_a_report_about_an_entry_still_being_sent_is_read_again_next_run(
    mailbox: DovecotServer,
) -> None:
    row = sent_row("someone@example.net", message_id=ORIGINAL_ID)
    MailLog.objects.filter(pk=row.pk).update(status=MailStatus.SENDING)
    mailbox.deliver(ARF_REPORT.encode())

    code, out, _err = run_mailbounces()

    assert code == 0
    assert "its entry is still being sent; read again next run" in out
    MailLog.objects.filter(pk=row.pk).update(status=MailStatus.SENT)
    run_mailbounces()
    row.refresh_from_db()
    assert row.status == MailStatus.COMPLAINED


def test_a_server_announcing_a_huge_literal_is_stopped_by_the_cap_not_obeyed(
    settings: Any, hostile_imap: Any
) -> None:
    hostile_imap.behaviour.fetch_literal = 1_000_000_000_000
    settings.MAILOPS = {**settings.MAILOPS, "MAILBOXES": {"default": hostile_imap.mailbox()}}

    code, _out, err = run_mailbounces()

    assert code == 1
    assert "sent a literal of 1,000,000,000,000 bytes (at most 10,551,296 are read)" in err
    assert not MailboxCursor.objects.exists()
