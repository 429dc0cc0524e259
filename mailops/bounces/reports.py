"""What one message from the sender's mailbox says: a bounce, a delay, a complaint, or nothing.

The order of the questions matters (:func:`read_report`):

1. ``multipart/report; report-type=delivery-status`` (RFC 3464): our own
   parsing of each per-recipient block (Final-Recipient, Action, Status,
   Diagnostic-Code, Remote-MTA). Postfix's reports carry
   ``Auto-Submitted: auto-replied`` as RFC 3834 asks of every automatic
   message, so the report type is asked before any auto-reply marker.
2. ``report-type=feedback-report`` (ARF, RFC 5965): a complaint.
3. ``Auto-Submitted: auto-replied`` and the usual vacation markers: an
   auto-reply, which is not a bounce.
4. Anything else goes to flufl.bounce (Mailman's detectors), which knows
   dozens of non-standard formats (Gmail's "Mail Delivery Subsystem",
   Exchange NDRs, Yahoo, Exim, qmail, Postfix's older text); it gives the
   addresses and permanent/temporary, and the status code and server reply
   are looked for in the report's text.

The original message's Message-ID (how a report finds its log row) comes
from the returned ``message/rfc822`` or ``text/rfc822-headers`` part, or
from a copy of the headers quoted in the text.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from dataclasses import dataclass
from email.message import Message

from django.utils.translation import gettext
from flufl.bounce import all_failures

from mailops.bounces.parts import (
    HEADER_PARTS,
    address_of,
    first_part,
    original_headers,
    original_message_id,
    own_parts,
    status_code,
    text_of,
    typed_value,
)
from mailops.models import MailEventType

# Report kinds (what read_report found).
BOUNCE = "bounce"
COMPLAINT = "complaint"
AUTO_REPLY = "auto_reply"
NOT_A_REPORT = "not_a_report"
UNREADABLE = "unreadable"

RFC3464 = "RFC 3464"
ARF = "ARF (RFC 5965)"
NON_STANDARD = "non-standard (flufl.bounce)"

_ENHANCED_IN_TEXT = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
_SMTP_REPLY_LINE = re.compile(r"(?<![\d.])[45]\d\d[ -]")
_QUOTED_MESSAGE_ID = re.compile(r"^message-id:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
_BLANK_LINE = re.compile(r"\r?\n[ \t]*\r?\n")
_DIAGNOSTIC_LIMIT = 1000

# Headers of vacation and other automatic replies (RFC 3834 and common practice).
_AUTO_REPLY_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponder")
_AUTO_REPLY_PRECEDENCE = {"auto_reply", "auto-reply"}

# What makes a message worth reading in full: the headers of reports. An
# ordinary message is never read past its headers.
_REPORT_SENDERS = re.compile(r"mailer-daemon|postmaster|mail delivery|mdaemon|abuse|feedback")
_REPORT_SUBJECTS = re.compile(
    r"undeliver|undelivered|delivery|deliverable|returned mail|failure|failed|delayed|"
    r"non-delivery|not delivered|could not be delivered|bounce|abuse|complaint|"
    r"warning: could not send|nicht zustellbar|unzustellbar|non remis",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RecipientOutcome:
    """What a report says about one recipient."""

    recipient: str
    # A MailEventType: bounced, deferred or complained.
    event_type: str
    dsn_status: str = ""
    diagnostic: str = ""
    remote_mta: str = ""
    # Original-Recipient (RFC 3464), when the report names one: the address as sent.
    original_recipient: str = ""


@dataclass(frozen=True)
class Report:
    """One message from the mailbox, understood."""

    kind: str
    format: str = ""
    outcomes: tuple[RecipientOutcome, ...] = ()
    # The Message-ID of the message the report is about, with its < >.
    original_message_id: str = ""
    # What identifies this report whatever folder or UID it has: its own
    # Message-ID, or a hash of its bytes.
    identity: str = ""
    subject: str = ""
    # For UNREADABLE: why.
    note: str = ""


def looks_like_report(headers: Message) -> bool:
    """Whether a message with these headers may be a report (and is worth reading in full).

    Generous on purpose (a missed bounce costs more than a read message):
    any multipart/report, any automatic message, anything from a mailer
    daemon or postmaster, an X-Failed-Recipients header, or a subject that
    sounds like one.
    """
    if headers.get_content_type() == "multipart/report":
        return True
    if _auto_submitted(headers) or headers.get("X-Failed-Recipients"):
        return True
    if any(headers.get(name) for name in _AUTO_REPLY_HEADERS):
        return True
    sender = text_of(headers.get("From")).lower()
    return bool(
        _REPORT_SENDERS.search(sender) or _REPORT_SUBJECTS.search(text_of(headers.get("Subject")))
    )


def parse_message(raw: bytes) -> Message:
    """The message as :mod:`email` reads it (the compat32 policy, which flufl.bounce expects)."""
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def read_report(raw: bytes) -> Report:
    """What the message ``raw`` reports (see the module's docstring for the order of questions)."""
    message = parse_message(raw)
    identity = text_of(message.get("Message-ID")).strip() or hashlib.sha256(raw).hexdigest()
    subject = text_of(message.get("Subject"))[:255]
    if message.defects and not message.keys():
        return Report(kind=UNREADABLE, identity=identity, note=gettext("not a mail message"))
    report_type = message.get_param("report-type", "", header="content-type")
    report_type = str(report_type).lower() if isinstance(report_type, str) else ""
    is_report = message.get_content_type() == "multipart/report"
    if is_report and report_type == "delivery-status":
        report = _delivery_status(message, identity=identity, subject=subject)
        if report is not None:
            return report
    elif is_report and report_type == "feedback-report":
        return _feedback_report(message, identity=identity, subject=subject)
    if _is_auto_reply(message):
        return Report(kind=AUTO_REPLY, identity=identity, subject=subject)
    return _non_standard(message, identity=identity, subject=subject, dsn=is_report)


# --- RFC 3464 ---------------------------------------------------------------------


def _delivery_status(message: Message, *, identity: str, subject: str) -> Report | None:
    """The report's per-recipient outcomes; ``None`` if it has no readable status part."""
    part = first_part(message, "message/delivery-status", "message/global-delivery-status")
    if part is None:
        return None
    outcomes = [
        outcome
        for block in _status_blocks(part)
        if (outcome := _recipient_outcome(block)) is not None
    ]
    if not outcomes and not any(block.get("Final-Recipient") for block in _status_blocks(part)):
        return None
    return Report(
        kind=BOUNCE if outcomes else NOT_A_REPORT,
        format=RFC3464,
        outcomes=tuple(outcomes),
        original_message_id=original_message_id(message),
        identity=identity,
        subject=subject,
    )


def _status_blocks(part: Message) -> list[Message]:
    """The header blocks of a delivery-status part (per-message first, then per-recipient)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    # Some servers encode the part (base64, quoted-printable): decode and split it here.
    data = part.get_payload(decode=True)
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(payload or "")
    return [
        email.message_from_string(block.strip() + "\n", policy=email.policy.compat32)
        for block in _BLANK_LINE.split(text)
        if block.strip()
    ]


def _recipient_outcome(block: Message) -> RecipientOutcome | None:
    recipient = address_of(block.get("Final-Recipient"))
    if not recipient:
        return None
    action = text_of(block.get("Action")).strip().lower()
    status = status_code(block.get("Status"))
    if action == "failed" or (not action and status.startswith("5")):
        # The server gave up: the message will not arrive, whatever the class
        # (a "failed" 4.4.7 is a message that expired in the queue).
        event_type = MailEventType.BOUNCED
    elif action == "delayed" or (not action and status.startswith("4")):
        event_type = MailEventType.DEFERRED
    else:
        # delivered, relayed, expanded: good news, nothing to record.
        return None
    diagnostic = typed_value(block.get("Diagnostic-Code"))
    if status.endswith(".0.0"):
        # "5.0.0" says little; the server's own reply often names the reason.
        status = next(
            (code for code in _ENHANCED_IN_TEXT.findall(diagnostic) if code[0] == status[0]),
            status,
        )
    return RecipientOutcome(
        recipient=recipient,
        event_type=event_type,
        dsn_status=status,
        diagnostic=diagnostic[:_DIAGNOSTIC_LIMIT],
        remote_mta=typed_value(block.get("Remote-MTA"))[:255],
        original_recipient=address_of(block.get("Original-Recipient")),
    )


# --- ARF (RFC 5965) ---------------------------------------------------------------


def _feedback_report(message: Message, *, identity: str, subject: str) -> Report:
    part = first_part(message, "message/feedback-report")
    blocks = _status_blocks(part) if part is not None else []
    fields = blocks[0] if blocks else Message()
    original = original_headers(message)
    recipient = address_of(fields.get("Original-Rcpt-To")) or address_of(
        original.get("To") if original is not None else None
    )
    feedback_type = text_of(fields.get("Feedback-Type")).strip().lower() or "abuse"
    agent = text_of(fields.get("User-Agent")).strip()
    diagnostic = f"Feedback-Type: {feedback_type}" + (f" ({agent})" if agent else "")
    outcomes: tuple[RecipientOutcome, ...] = ()
    if recipient or original is not None:
        outcomes = (
            RecipientOutcome(
                recipient=recipient,
                event_type=MailEventType.COMPLAINED,
                diagnostic=diagnostic[:_DIAGNOSTIC_LIMIT],
                remote_mta=typed_value(fields.get("Reporting-MTA"))[:255],
            ),
        )
    if not outcomes:
        return Report(
            kind=UNREADABLE,
            format=ARF,
            identity=identity,
            subject=subject,
            note=gettext(
                "a complaint report that names neither the recipient nor the original message"
            ),
        )
    return Report(
        kind=COMPLAINT,
        format=ARF,
        outcomes=outcomes,
        original_message_id=original_message_id(message),
        identity=identity,
        subject=subject,
    )


# --- auto-replies -----------------------------------------------------------------


def _auto_submitted(message: Message) -> str:
    value = text_of(message.get("Auto-Submitted")).strip().lower()
    return "" if value.startswith("no") else value


def _is_auto_reply(message: Message) -> bool:
    if _auto_submitted(message).startswith("auto-replied"):
        return True
    if any(message.get(name) for name in _AUTO_REPLY_HEADERS):
        return True
    return text_of(message.get("Precedence")).strip().lower() in _AUTO_REPLY_PRECEDENCE


# --- everything else: flufl.bounce --------------------------------------------------


def _non_standard(message: Message, *, identity: str, subject: str, dsn: bool) -> Report:
    try:
        temporary, permanent = all_failures(_for_detectors(message))
    except Exception as error:  # noqa: BLE001 - a heuristic parser fed whatever arrived
        return Report(
            kind=UNREADABLE,
            format=NON_STANDARD,
            identity=identity,
            subject=subject,
            note=gettext("flufl.bounce could not read it (%(error)s)")
            % {"error": type(error).__name__},
        )
    addresses = [(MailEventType.BOUNCED, a) for a in sorted(permanent)] + [
        (MailEventType.DEFERRED, a) for a in sorted(temporary - permanent)
    ]
    if not addresses:
        if dsn:
            return Report(
                kind=UNREADABLE,
                format=RFC3464,
                identity=identity,
                subject=subject,
                note=gettext("a delivery report without a readable delivery-status part"),
            )
        return Report(kind=NOT_A_REPORT, identity=identity, subject=subject)
    text = _report_text(message)
    # A code or a reply line in the text belongs to the recipient only when
    # the report is about one address.
    single = len(addresses) == 1
    outcomes = tuple(
        RecipientOutcome(
            recipient=address.decode("utf-8", "replace").strip("<>").strip(),
            event_type=event_type,
            dsn_status=_code_in(text, event_type) if single else "",
            diagnostic=_reply_line(text) if single else "",
        )
        for event_type, address in addresses
    )
    return Report(
        kind=BOUNCE,
        format=NON_STANDARD,
        outcomes=outcomes,
        original_message_id=original_message_id(message) or _quoted_message_id(text),
        identity=identity,
        subject=subject,
    )


def _for_detectors(message: Message) -> Message:
    """``message`` as flufl.bounce's detectors expect it; one that fails stops them all.

    Every header as text: the compat32 parser gives a header with raw 8-bit
    bytes (common in bounces from non-English servers) as a ``Header``
    object, on which a detector calls ``str`` methods. A From header: one
    detector takes the first address of ``From`` and fails on none.
    """
    for part in message.walk():
        for name, value in part.items():
            if not isinstance(value, str):
                part.replace_header(name, str(value))
    if not str(message.get("From") or "").strip():
        del message["From"]
        message["From"] = "<>"
    return message


def _report_text(message: Message) -> str:
    """The report's own text parts (not the returned message), decoded."""
    texts: list[str] = []
    for part in own_parts(message):
        if part.get_content_maintype() != "text" or part.get_content_type() in HEADER_PARTS:
            continue
        data = part.get_payload(decode=True)
        if isinstance(data, bytes):
            charset = part.get_content_charset() or "utf-8"
            try:
                texts.append(data.decode(charset, "replace"))
            except LookupError:
                texts.append(data.decode("utf-8", "replace"))
    return "\n".join(texts)


def _code_in(text: str, event_type: str) -> str:
    wanted = "5" if event_type == MailEventType.BOUNCED else "4"
    for code in _ENHANCED_IN_TEXT.findall(text):
        if code.startswith(wanted):
            return str(code)
    return ""


def _reply_line(text: str) -> str:
    for line in text.splitlines():
        if _SMTP_REPLY_LINE.search(line):
            return " ".join(line.split())[:_DIAGNOSTIC_LIMIT]
    return ""


def _quoted_message_id(text: str) -> str:
    match = _QUOTED_MESSAGE_ID.search(text)
    return match[1] if match else ""
