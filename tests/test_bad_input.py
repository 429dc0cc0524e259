"""Bad input gets a clear error and a row, never a DataError or a leaked credential."""

from __future__ import annotations

import base64
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from mailops.exceptions import MailerURLError
from mailops.mailer_urls import mailers_from_environ
from mailops.mailers.environ import parse_mailer_url, throttle_from_url
from mailops.models import MailLog, MailStatus
from mailops.redaction import REDACTED, redact

pytestmark = pytest.mark.django_db

LONG_DOMAIN = "d" * 60 + "." + "e" * 60 + "." + "f" * 60 + "." + "g" * 60 + ".example.com"


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("x" * 330 + "@example.com", "at most 254"),
        ("a@" + LONG_DOMAIN, "at most 254"),
        ("l" * 65 + "@example.com", "at most 64"),
    ],
    ids=["over-320", "over-254", "local-part-65"],
)
def test_over_long_addresses_are_rejected_rows_not_crashes(address: str, reason: str) -> None:
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("sendtestmail", address, "ok@example.com", stdout=out, stderr=StringIO())

    assert caught.value.returncode != 0
    row = MailLog.objects.get(status=MailStatus.REJECTED)
    assert reason in row.error
    assert len(row.recipient) <= 320
    assert row.recipient.startswith(address[:100])
    # Nothing was sent: one bad entry stops the command's batch.
    assert not MailLog.objects.exclude(status=MailStatus.REJECTED).exists()


def test_a_64_character_local_part_is_fine() -> None:
    call_command("sendtestmail", "l" * 64 + "@example.com", stdout=StringIO())
    assert MailLog.objects.get().status == MailStatus.SENT


def test_an_over_long_subject_is_a_clear_command_error() -> None:
    with pytest.raises(CommandError, match="at most 998"):
        call_command("sendtestmail", "ok@example.com", "--subject", "s" * 999, stdout=StringIO())
    assert not MailLog.objects.exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "infinity"])
def test_non_finite_timeouts_are_refused(value: str) -> None:
    with pytest.raises(MailerURLError, match="finite"):
        parse_mailer_url(f"smtp://relay.example.com?timeout={value}", variable="MAILER_URL")


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_rates_are_refused(value: str) -> None:
    with pytest.raises(MailerURLError, match="finite"):
        throttle_from_url(f"smtp://relay.example.com?rate={value}", variable="MAILER_URL")


@pytest.mark.parametrize(
    "password",
    [
        "pa?ss&word-1234",
        "s3cr?t#x-1234",
        # Digits before "?" parse as a port: the rest became "query parameters".
        "2525?hidden-tail-1234",
        "2525?x=1&leaked-value-99",
        "2525?rate=zz9-1234",
    ],
)
def test_a_password_with_reserved_characters_is_never_echoed(password: str, tmp_path) -> None:
    environ = {"MAILER_URL": f"smtp+tls://user:{password}@smtp.example.com:587"}
    with pytest.raises(MailerURLError) as caught:
        mailers_from_environ(environ, outbox_dir=tmp_path)
    text = str(caught.value)
    assert text.startswith("MAILER_URL: ")
    for piece in {password, *password.replace("?", " ").replace("&", " ").split()}:
        if len(piece) >= 4:
            assert piece.split("=")[-1] not in text, text


def test_basic_auth_and_auth_blobs_are_redacted(settings) -> None:
    settings.ANYMAIL = {"MAILGUN_API_KEY": "key-0123456789abcdef"}
    basic = base64.b64encode(b"api:key-0123456789abcdef").decode()
    text = (
        f"401 from provider; request had Authorization: Basic {basic}; "
        "smtp said AUTH PLAIN AHVzZXIAc2VjcmV0LXBhc3M= and AUTH LOGIN c2VjcmV0LXBhc3M="
    )

    cleaned = redact(text)

    assert basic not in cleaned
    assert "AHVzZXIAc2VjcmV0LXBhc3M=" not in cleaned
    assert "c2VjcmV0LXBhc3M=" not in cleaned
    assert cleaned.count(REDACTED) == 3
    # A configured key is caught in its basic-auth form even without the header name.
    assert basic not in redact(f"echo: {basic}")
