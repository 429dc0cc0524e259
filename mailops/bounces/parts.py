"""Pieces of a report message: the returned original, its own text parts, RFC 3464 field values."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterable
from email.message import Message
from email.utils import parseaddr

_STATUS = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})")

HEADER_PARTS = ("text/rfc822-headers", "message/rfc822-headers", "text/rfc822-header")


def original_headers(message: Message) -> Message | None:
    """The headers of the message the report returns, if it returns them."""
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        elif content_type in HEADER_PARTS:
            data = part.get_payload(decode=True)
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else ""
            return email.message_from_string(text, policy=email.policy.compat32)
    return None


def original_message_id(message: Message) -> str:
    original = original_headers(message)
    if original is None:
        return ""
    value = text_of(original.get("Message-ID")).strip()
    match = re.search(r"<[^<>\s]+>", value)
    return match[0] if match else ""


def own_parts(message: Message) -> Iterable[Message]:
    """The report's parts, not descending into the returned message."""
    if not message.is_multipart():
        yield message
        return
    for part in message.get_payload():
        if not isinstance(part, Message):
            continue
        if part.get_content_maintype() == "message":
            continue
        if part.is_multipart():
            yield from own_parts(part)
        else:
            yield part


def first_part(message: Message, *content_types: str) -> Message | None:
    for part in message.walk():
        if part.get_content_type() in content_types:
            return part
    return None


def text_of(value: object) -> str:
    """A header value as one line of text (compat32 may give ``Header`` objects)."""
    if value is None:
        return ""
    return " ".join(str(value).split())


def typed_value(value: object) -> str:
    """``smtp; 550 5.1.1 no such user`` -> ``550 5.1.1 no such user`` (RFC 3464 typed fields)."""
    text = text_of(value)
    kind, separator, rest = text.partition(";")
    if separator and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]*", kind.strip()):
        return rest.strip()
    return text


def address_of(value: object) -> str:
    address = typed_value(value)
    if not address:
        return ""
    _name, parsed = parseaddr(address)
    return (parsed or address).strip("<>").strip()


def status_code(value: object) -> str:
    match = _STATUS.search(text_of(value))
    return match[0] if match else ""
