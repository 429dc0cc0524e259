"""Every form a server can echo a secret in is masked, for short, long and non-ASCII secrets.

Servers quote what they were sent in their own syntax: Python's ``repr``
(and the ``repr`` of that inside an exception's ``bytes``), JSON, HTML,
URL query strings, base64 in ``AUTH PLAIN`` / ``Authorization: Basic``
lines, hex dumps. The table below is every such form for three secrets: a
two-character password (the README's example ``pw``: masked only where it
stands as a credential), a long one with quotes, backslashes and spaces,
and a non-ASCII one.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable
from typing import Any

import pytest

from mailops.redaction import REDACTED, redact

USERNAME = "ops@example.com"
SECRETS = {
    "short": "pw",
    "long": "se\"cr\\et p'ass+/=",
    "non-ASCII": "pässwörd€ 🔑",
}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _percent(secret: str, *, upper: bool) -> str:
    text = "".join(f"%{byte:02X}" for byte in secret.encode())
    return text if upper else text.lower()


# name -> how the server wrote the secret into its reply.
FORMS: dict[str, Callable[[str], str]] = {
    "as is": lambda s: s,
    "python repr": repr,
    "repr of bytes repr": lambda s: repr(repr(s).encode()),
    "backslash escaped": lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"',
    "json": json.dumps,
    "json, not ascii-escaped": lambda s: json.dumps(s, ensure_ascii=False),
    "html escaped": lambda s: "&quot;" + html.escape(s) + "&quot;",
    "html numeric": lambda s: "&#34;" + "".join(f"&#{ord(c)};" for c in s) + "&#34;",
    "html hex": lambda s: "&#x22;" + "".join(f"&#x{ord(c):x};" for c in s) + "&#x22;",
    "percent upper": lambda s: "=" + _percent(s, upper=True),
    "percent lower": lambda s: "=" + _percent(s, upper=False),
    "plus for space": lambda s: "=" + _percent(s, upper=True).replace("%20", "+"),
}

# Encoded forms that make sense for a secret of any length: the credential
# blobs that go over the wire (AUTH PLAIN, HTTP Basic) in every encoding.
BLOB_FORMS: dict[str, Callable[[str], str]] = {
    "AUTH PLAIN base64": lambda s: _b64(f"\0{USERNAME}\0{s}".encode()),
    "AUTH PLAIN base64, no padding": lambda s: _b64(f"\0{USERNAME}\0{s}".encode()).rstrip("="),
    "AUTH PLAIN base64url": lambda s: _b64url(f"\0{USERNAME}\0{s}".encode()),
    "basic user:pass": lambda s: _b64(f"{USERNAME}:{s}".encode()),
    "basic api:key": lambda s: _b64(f"api:{s}".encode()),
    "basic api:key base64url": lambda s: _b64url(f"api:{s}".encode()),
    "hex of AUTH PLAIN": lambda s: f"\0{USERNAME}\0{s}".encode().hex(),
    "HEX of AUTH PLAIN": lambda s: f"\0{USERNAME}\0{s}".encode().hex().upper(),
}

# Forms of the secret alone that only a secret of four characters or more
# gets (base64 "cHc" or hex "7077" of "pw" would be ordinary-looking text).
LONG_ONLY_FORMS: dict[str, Callable[[str], str]] = {
    "base64": lambda s: _b64(s.encode()),
    "base64, no padding": lambda s: _b64(s.encode()).rstrip("="),
    "base64url": lambda s: _b64url(s.encode()),
    "base64 inside a longer blob": lambda s: _b64(f"token={s};expires=0".encode()),
    "hex": lambda s: s.encode().hex(),
    "HEX": lambda s: s.encode().hex().upper(),
}


@pytest.fixture
def configured(settings: Any) -> Callable[[str], None]:
    def configure(secret: str) -> None:
        settings.MAILERS = {
            "default": {
                "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "OPTIONS": {"host": "h", "username": USERNAME, "password": secret},
            }
        }

    return configure


def _cases(*, blobs: bool = True) -> list[Any]:
    cases = []
    for size, secret in SECRETS.items():
        for name, form in {**FORMS, **(BLOB_FORMS if blobs else {})}.items():
            cases.append(pytest.param(secret, form, id=f"{size}-{name}"))
        if len(secret) >= 4:
            for name, form in LONG_ONLY_FORMS.items():
                cases.append(pytest.param(secret, form, id=f"{size}-{name}"))
    return cases


@pytest.mark.parametrize(("secret", "form"), _cases())
def test_a_configured_secret_is_masked_in_every_form(
    configured: Callable[[str], None], secret: str, form: Callable[[str], str]
) -> None:
    configured(secret)
    echoed = form(secret)
    text = f"535 5.7.8 rejected (password {echoed}) try again"

    cleaned = redact(text)

    assert echoed not in cleaned
    assert secret not in cleaned
    assert REDACTED in cleaned
    assert cleaned.startswith("535 5.7.8 rejected (")
    assert cleaned.endswith(" try again")


# The blobs need the username: they are built from configured secrets only.
@pytest.mark.parametrize(("secret", "form"), _cases(blobs=False))
def test_a_secret_given_by_the_caller_is_masked_in_every_form(
    secret: str, form: Callable[[str], str]
) -> None:
    # What IMAP and connection checks do: pass the password they used.
    echoed = form(secret)

    cleaned = redact(f"NO [AUTHENTICATIONFAILED] password {echoed}", [secret])

    assert echoed not in cleaned
    assert REDACTED in cleaned


@pytest.mark.parametrize(
    "text",
    [
        "on port 25, tls on",
        "status: pwned password pwned",
        "PW is upper case",
        "sent to pw@example.com",
    ],
)
def test_a_short_secret_outside_a_credential_context_leaves_text_alone(text: str) -> None:
    assert redact(text, ["pw", "on"]) == text


@pytest.mark.parametrize(
    "text",
    [
        "password pw",
        "password: pw",
        'password="pw"',
        "the password is pw.",
        "(user 'ops', password 'pw')",
        '{"password": "pw"}',
        "secret=pw&x=1",
        "smtp://ops:pw@host",
        "login rejected: 'pw'",
    ],
)
def test_a_short_secret_in_a_credential_context_is_masked(text: str) -> None:
    cleaned = redact(text, ["pw"])

    assert "pw" not in cleaned.replace("password", ""), cleaned
    assert REDACTED in cleaned


def test_an_empty_configured_secret_masks_nothing(settings: Any) -> None:
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "h", "username": "", "password": ""},
        }
    }
    settings.ANYMAIL = {"MAILGUN_API_KEY": ""}

    assert redact("Invalid private key: none (hint: a: b)") == (
        "Invalid private key: none (hint: a: b)"
    )


def test_redaction_works_while_a_mailops_setting_is_mistyped(settings: Any) -> None:
    # It runs inside logging filters and error pages: it must not raise there.
    settings.MAILOPS = {**settings.MAILOPS, "MAILBOXES": ["not", "a", "dict"]}

    assert redact("password=hunter2") == f"password={REDACTED}"
