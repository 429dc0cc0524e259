"""What ``mailbounces`` understands in one message, from the real formats in fixtures/bounces."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailops.bounces import codes
from mailops.bounces.reports import (
    ARF,
    AUTO_REPLY,
    BOUNCE,
    COMPLAINT,
    NON_STANDARD,
    NOT_A_REPORT,
    RFC3464,
    UNREADABLE,
    looks_like_report,
    parse_message,
    read_report,
)

FIXTURES = Path(__file__).parent / "fixtures" / "bounces"
ORIGINAL_ID = "<177.20261207.mailops@example.test>"

# RFC 5965 Appendix B.2's example, addressed to our sender and returning our Message-ID.
ARF_REPORT = f"""\
From: <abusedesk@example.com>
Date: Thu, 8 Mar 2005 17:40:36 EDT
Subject: FW: Earn money
To: <ops@example.test>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
     boundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
192.0.2.1 on Thu, 8 Mar 2005 14:00:00 EDT.  For more information
about this format please see http://www.mipassoc.org/arf/.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <ops@example.test>
Original-Rcpt-To: <someone@example.net>
Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT
Reporting-MTA: dns; mail.example.com
Source-IP: 192.0.2.1
Authentication-Results: mail.example.com;
               spf=fail smtp.mail=somespammer@example.com
Reported-Domain: example.test

--part1_13d.2e68ed54_boundary
Content-Type: message/rfc822
Content-Disposition: inline

From: <ops@example.test>
Received: from mailserver.example.net (mailserver.example.net
        [192.0.2.1]) by example.com with ESMTP id M63d4137594e46;
        Thu, 08 Mar 2005 14:00:00 -0400
To: <someone@example.net>
Subject: Earn money
MIME-Version: 1.0
Content-type: text/plain
Message-ID: {ORIGINAL_ID}
Date: Thu, 02 Sep 2004 12:31:03 -0500

Spam Spam Spam
Spam Spam Spam
--part1_13d.2e68ed54_boundary--
"""

# What Dovecot's Sieve vacation extension sends (RFC 3834 §3.1.7 and §5).
VACATION_REPLY = f"""\
Return-Path: <>
Message-ID: <dovecot-sieve-1765071234-2541-0@mx.example.net>
Date: Mon, 07 Dec 2026 01:50:00 +0000
From: Someone <someone@example.net>
To: <ops@example.test>
Subject: Automatic reply: mailops test mail
In-Reply-To: {ORIGINAL_ID}
References: {ORIGINAL_ID}
Auto-Submitted: auto-replied (vacation)
Precedence: bulk
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

I am away until 4 January and read no mail. In urgent cases write to
the office.
"""


def fixture(name: str) -> bytes:
    lines = (FIXTURES / name).read_bytes().splitlines(keepends=True)
    # Two files keep the mbox separator line they were stored with.
    return b"".join(lines[1:] if lines[0].startswith(b"From ") else lines)


@pytest.mark.parametrize(
    ("name", "recipient", "event_type"),
    [
        ("gmail_failure.eml", "userx@example.com", "bounced"),
        ("gmail_delay.eml", "userx@example.com", "deferred"),
        ("exchange_ndr.eml", "userx@example.COM", "bounced"),
        ("yahoo.eml", "userx@example.com", "bounced"),
        ("exim.eml", "userx@its.example.nl", "bounced"),
        ("qmail.eml", "userx@example.de", "bounced"),
        ("postfix_text.eml", "xxxxx@local.ie", "bounced"),
    ],
)
def test_non_standard_bounces_are_read_through_flufl_bounce(
    name: str, recipient: str, event_type: str
) -> None:
    raw = fixture(name)
    assert looks_like_report(parse_message(raw))

    report = read_report(raw)

    assert (report.kind, report.format) == (BOUNCE, NON_STANDARD)
    [outcome] = report.outcomes
    assert (outcome.recipient, outcome.event_type) == (recipient, event_type)


def test_codes_and_server_replies_are_taken_from_a_non_standard_report_s_text() -> None:
    [outcome] = read_report(fixture("exim.eml")).outcomes
    assert outcome.dsn_status == "5.1.1"
    assert outcome.diagnostic == "553 5.1.1 unknown or illegal user:"
    # Exim quotes the returned message's headers: its Message-ID finds the row.
    assert read_report(fixture("exim.eml")).original_message_id == (
        "<19990920022322.A19735@stereo.rotzorg.org>"
    )


def test_an_rfc3464_report_gives_each_recipient_s_status_diagnostic_and_remote_mta() -> None:
    report = read_report(fixture("exim_dsn_gmail_policy.eml"))

    assert (report.kind, report.format) == (BOUNCE, RFC3464)
    [outcome] = report.outcomes
    assert outcome.recipient == "david...@gmail.com"
    assert outcome.event_type == "bounced"
    # Status says 5.0.0; the server's own reply is more precise and of the same class.
    assert outcome.dsn_status == "5.7.1"
    assert outcome.remote_mta == "gmail-smtp-in.l.google.com"
    assert outcome.diagnostic.startswith("550-5.7.1 [94.136.40.141 12] Our system has detected")


def test_an_arf_report_is_a_complaint_about_the_original_recipient() -> None:
    report = read_report(ARF_REPORT.encode())

    assert (report.kind, report.format) == (COMPLAINT, ARF)
    assert report.original_message_id == ORIGINAL_ID
    [outcome] = report.outcomes
    assert (outcome.recipient, outcome.event_type) == ("someone@example.net", "complained")
    assert outcome.diagnostic == "Feedback-Type: abuse (SomeGenerator/1.0)"


def test_a_vacation_reply_is_an_auto_reply_not_a_bounce() -> None:
    assert read_report(VACATION_REPLY.encode()).kind == AUTO_REPLY


def test_ordinary_mail_is_not_a_report_and_not_read_past_its_headers() -> None:
    raw = b"From: friend@example.net\r\nSubject: lunch?\r\n\r\nTomorrow at noon?\r\n"
    assert not looks_like_report(parse_message(raw))
    assert read_report(raw).kind == NOT_A_REPORT


def test_a_delivery_report_without_a_readable_status_part_is_unreadable_not_ignored() -> None:
    raw = (
        b"From: MAILER-DAEMON@example.net\r\nSubject: Undelivered Mail\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nsomething went wrong\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\n"
        b"garbage without any field\r\n--b--\r\n"
    )
    report = read_report(raw)
    assert report.kind == UNREADABLE
    assert report.note == "a delivery report without a readable delivery-status part"


def test_status_codes_in_words() -> None:
    assert codes.in_words("5.1.1") == "the recipient's server said the mailbox does not exist"
    assert codes.in_words("4.2.2") == (
        "the recipient's server said, for now, the mailbox is full; delivery is being retried"
    )
    assert codes.in_words("5.7.99") == (
        "the recipient's server said the message was refused by its security or policy rules"
    )
    assert codes.in_words("nonsense") == "the recipient's server refused the message"


@pytest.mark.parametrize(
    "from_line",
    [b"From: Mail-Daemon (Z\xfcrich) <MAILER-DAEMON@gate0.n-h.net>\n", b""],
    ids=["raw 8-bit From", "no From"],
)
def test_headers_that_trip_flufl_bounce_s_detectors_still_give_the_bounce(
    from_line: bytes,
) -> None:
    raw = fixture("qmail.eml").replace(b"From: MAILER-DAEMON@gate0.n-h.net\n", from_line)

    report = read_report(raw)

    assert report.kind == BOUNCE
    assert [o.recipient for o in report.outcomes] == ["userx@example.de"]
