"""Secrets never survive into stored or printed text."""

from __future__ import annotations

import base64

from mailops.redaction import REDACTED, redact


def test_configured_passwords_and_their_encodings_are_masked(settings) -> None:
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "h", "username": "me@x.com", "password": "s3cr3t p@ss"},
        },
        "api": {
            "BACKEND": "anymail.backends.postmark.EmailBackend",
            "OPTIONS": {"server_token": "pm-token-123"},
        },
    }
    plain = base64.b64encode(b"\0me@x.com\0s3cr3t p@ss").decode()
    text = (
        f"535 bad credentials s3cr3t p@ss / s3cr3tp@ss / s3cr3t%20p%40ss / {plain} "
        "token pm-token-123"
    )
    cleaned = redact(text)
    for leaked in ("s3cr3t", "p%40ss", plain, "pm-token-123"):
        assert leaked not in cleaned
    assert cleaned.startswith("535 bad credentials ")
    assert REDACTED in cleaned


def test_credential_shapes_are_masked_even_when_not_configured() -> None:
    text = (
        "connect smtp://user:pw@host failed; "
        'body {"api_key": "abc", "Message": "x"}; url ?token=zzz&x=1; password=hunter2'
    )
    cleaned = redact(text)
    for leaked in ("user:pw", '"abc"', "zzz", "hunter2"):
        assert leaked not in cleaned
    assert "x=1" in cleaned
    assert '"Message": "x"' in cleaned


def test_extra_secrets_and_short_values() -> None:
    assert redact("key is abcdef", ["abcdef"]) == f"key is {REDACTED}"
    # Very short values would mask ordinary words; they are left alone.
    assert redact("on port 25", ["on"]) == "on port 25"
    assert redact("") == ""
