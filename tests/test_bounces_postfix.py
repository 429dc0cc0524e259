"""``mailbounces`` against real bounce bytes: Postfix writes them, Dovecot serves them.

A private Postfix accepts the test mail and then fails its delivery
(``bounce.test``: ``error:5.1.1``; ``slow.test``: ``retry:`` with a one-second
``delay_warning_time``), so Postfix itself mails the RFC 3464 report to the
sender, whose domain it delivers into a private Dovecot's Maildir; mailops
reads it back over IMAP, read-only.
"""

from __future__ import annotations

import hashlib
import json
import time
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from mailops.models import MailEvent, MailLog, MailStatus, MailTrigger
from mailops.recipients import from_addresses
from mailops.services import send_test_mail
from mailops.suppression.models import Suppression, SuppressionReason
from mailops.tracking import MAILBOX_SOURCE
from tests.commands import run_sendtestmail
from tests.imap_server import DovecotServer
from tests.postfix_server import BOUNCE_DOMAIN, SLOW_DOMAIN, PostfixServer

pytestmark = pytest.mark.django_db

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
SENDER = "ops@example.test"


def use_bouncing_postfix(settings: Any, postfix: PostfixServer, dovecot: DovecotServer) -> None:
    settings.MAILERS = {"default": {"BACKEND": SMTP_BACKEND, "OPTIONS": postfix.options()}}
    settings.MAILOPS = {
        **settings.MAILOPS,
        "FROM_EMAILS": {"default": SENDER},
        "MAILBOXES": {"default": dovecot.mailbox()},
    }


def run_mailbounces(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("mailbounces", *args, stdout=out, stderr=err)
    except CommandError as error:
        return error.returncode, out.getvalue(), str(error)
    return 0, out.getvalue(), err.getvalue()


def send_one(address: str) -> MailLog:
    [row] = send_test_mail(from_addresses([address]), trigger=MailTrigger.COMMAND).logs()
    assert row.status == MailStatus.SENT
    return row


def wait_for_reports(dovecot: DovecotServer, count: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while len(maildir_state(dovecot)) < count:
        assert time.monotonic() < deadline, f"Postfix wrote fewer than {count} report(s)"
        time.sleep(0.1)


def maildir_state(dovecot: DovecotServer) -> dict[str, tuple[str, str]]:
    """Every message of every folder: ``{unique name: (flags, sha256 of the bytes)}``.

    Dovecot moves a message from new/ to cur/ (adding ``:2,`` with no flags)
    the first time any client looks: that is its bookkeeping, not a change of
    the message, so a file is known by the name before the colon.
    """
    state: dict[str, tuple[str, str]] = {}
    for path in Path(dovecot.maildir).rglob("*"):
        if path.is_file() and path.parent.name in ("new", "cur"):
            unique, _colon, info = path.name.partition(":")
            flags = info.removeprefix("2,")
            state[f"{path.parent.parent.name}/{unique}"] = (
                flags,
                hashlib.sha256(path.read_bytes()).hexdigest(),
            )
    return state


def test_a_bounced_address_is_suppressed_and_its_next_test_mail_rejected(
    settings: Any, bouncing_postfix: PostfixServer, bounce_mailbox: DovecotServer
) -> None:
    """The whole story, issue #19's first "Done when": sent, bounced, suppressed, rejected."""
    use_bouncing_postfix(settings, bouncing_postfix, bounce_mailbox)
    gone = f"gone@{BOUNCE_DOMAIN}"
    row = send_one(gone)
    wait_for_reports(bounce_mailbox, 1)
    before = maildir_state(bounce_mailbox)
    # What makes a vacation reply too: the report type, not this, decides.
    [report] = [p for p in bounce_mailbox.maildir.rglob("*") if p.parent.name == "new"]
    assert b"\nAuto-Submitted: auto-replied\n" in report.read_bytes()

    code, out, err = run_mailbounces("--json")

    assert code == 0, err
    payload = json.loads(out)
    assert payload["ok"] is True
    [mailbox] = payload["mailboxes"]
    [line] = mailbox["reports"]
    assert line["kind"] == "bounced"
    assert line["recipient"] == gone
    assert (line["log_id"], line["matched_by"], line["changed"]) == (row.pk, "message_id", True)
    row.refresh_from_db()
    assert row.status == MailStatus.BOUNCED
    assert row.dsn_status == "5.1.1"
    assert row.error == "bounce (5.1.1): mailbox unavailable"
    assert row.bounce_match == "message_id"
    assert row.bounced_at is not None
    [event] = MailEvent.objects.filter(log=row)
    assert (event.esp, event.event_type, event.dsn_status) == (MAILBOX_SOURCE, "bounced", "5.1.1")
    # The bounce put the address on the list, pointing at what it came from.
    [entry] = Suppression.objects.all()
    assert (entry.address, entry.reason) == (gone, SuppressionReason.HARD_BOUNCE)
    assert (entry.source_log, entry.source_event) == (row, event)
    assert entry.detail == "5.1.1 mailbox unavailable"
    assert entry.expires_at is None
    # Read-only: every message still there, no flag set, not a byte changed.
    assert maildir_state(bounce_mailbox) == before
    assert all(flags == "" for flags, _digest in before.values())

    # Running again changes nothing: the report was read once.
    updated, suppressed_at = row.updated_at, entry.created_at
    code, out, _err = run_mailbounces("--json")
    assert code == 0
    assert json.loads(out)["mailboxes"][0]["messages_read"] == 0
    row.refresh_from_db()
    assert row.updated_at == updated
    assert MailEvent.objects.filter(log=row).count() == 1
    assert list(Suppression.objects.values_list("address", "created_at")) == [(gone, suppressed_at)]
    assert maildir_state(bounce_mailbox) == before

    # The next test mail to it is refused before it leaves: rejected, with why and since when.
    code, out, err = run_sendtestmail(gone)
    assert code == 1
    rejected = MailLog.objects.exclude(pk=row.pk).get()
    assert rejected.status == MailStatus.REJECTED
    since = timezone.localdate(suppressed_at).isoformat()
    assert rejected.error == f"suppressed since {since}: 5.1.1 mailbox unavailable"
    assert f"rejected  {gone}: suppressed since {since}" in out
    assert "--ignore-suppression sends anyway" in err

    # Sent anyway on request: Postfix takes it and bounces it again.
    code, out, err = run_sendtestmail(gone, "--ignore-suppression")
    assert code == 0, err
    again = MailLog.objects.exclude(pk__in=[row.pk, rejected.pk]).get()
    assert again.status == MailStatus.SENT
    wait_for_reports(bounce_mailbox, 2)
    # Postfix saw two messages for the address, the first and the forced one:
    # the rejected one never reached it.
    log = bouncing_postfix.wait_for_log(f"to=<{gone}>", count=2)
    assert log.count(f"to=<{gone}>") == 2
    assert log.count(f"message-id={row.message_id}") == 1
    assert log.count(f"message-id={again.message_id}") == 1
    # The mailbox holds what it held, and the new report: nothing of the user's was touched.
    after = maildir_state(bounce_mailbox)
    assert {name: after[name] for name in before} == before
    assert len(after) == len(before) + 1


def test_a_delay_notice_makes_the_entry_deferred_not_bounced(
    settings: Any, bouncing_postfix: PostfixServer, bounce_mailbox: DovecotServer
) -> None:
    use_bouncing_postfix(settings, bouncing_postfix, bounce_mailbox)
    row = send_one(f"full@{SLOW_DOMAIN}")
    wait_for_reports(bounce_mailbox, 1)

    code, out, err = run_mailbounces()

    assert code == 0, err
    assert f"deferred    full@{SLOW_DOMAIN} 4.2.2 -> entry {row.pk} (deferred" in out
    assert out.endswith(": 1 new message, 1 report, 1 entry changed.\n")
    row.refresh_from_db()
    assert (row.status, row.dsn_status) == (MailStatus.DEFERRED, "4.2.2")
    assert row.error == "delay notice (4.2.2): mailbox full, try again later"
    # The server is still trying: a delay is no bounce, and suppresses nothing.
    assert MailEvent.objects.get(log=row).event_type == "deferred"
    assert not Suppression.objects.exists()


def test_a_late_delay_notice_never_moves_a_bounced_entry_back(
    settings: Any, bouncing_postfix: PostfixServer, bounce_mailbox: DovecotServer
) -> None:
    use_bouncing_postfix(settings, bouncing_postfix, bounce_mailbox)
    row = send_one(f"full@{SLOW_DOMAIN}")
    wait_for_reports(bounce_mailbox, 1)
    MailLog.objects.filter(pk=row.pk).move_to(MailStatus.BOUNCED, dsn_status="5.2.2")

    code, out, err = run_mailbounces("--json")

    assert code == 0, err
    [line] = json.loads(out)["mailboxes"][0]["reports"]
    assert (line["status"], line["changed"]) == ("bounced", False)
    row.refresh_from_db()
    assert (row.status, row.dsn_status) == (MailStatus.BOUNCED, "5.2.2")
    # The notice is still on the timeline.
    assert MailEvent.objects.get(log=row).event_type == "deferred"


def test_dry_run_shows_the_bounce_and_writes_nothing(
    settings: Any, bouncing_postfix: PostfixServer, bounce_mailbox: DovecotServer
) -> None:
    use_bouncing_postfix(settings, bouncing_postfix, bounce_mailbox)
    row = send_one(f"gone@{BOUNCE_DOMAIN}")
    wait_for_reports(bounce_mailbox, 1)

    code, out, err = run_mailbounces("--dry-run")

    assert code == 0, err
    assert out.startswith(f"[dry run] bounced     gone@{BOUNCE_DOMAIN} 5.1.1 -> entry {row.pk}")
    row.refresh_from_db()
    assert row.status == MailStatus.SENT
    assert not MailEvent.objects.exists()
    # Not remembered either: the real run still finds it.
    code, out, _err = run_mailbounces("--json")
    assert json.loads(out)["mailboxes"][0]["reports"][0]["changed"] is True
