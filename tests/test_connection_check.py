"""`sendtestmail --check`: connect to each mailer without sending, and log the outcome.

Every SMTP variant runs against the real aiosmtpd server on loopback from
tests/smtp_server.py: STARTTLS with AUTH, implicit TLS, a server without TLS,
a bad password, and a port where nothing listens.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailops.exceptions import UnknownMailer
from mailops.mailers.connection import CheckOutcome, verify_connection
from mailops.models import MailLog, MailStatus, MailTrigger
from tests.commands import all_columns
from tests.commands import run_sendtestmail as run

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
LOCMEM_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
WRONG_PASSWORD = "wrong-password-s3cret"

pytestmark = pytest.mark.django_db


def use_mailers(settings: Any, **entries: dict[str, Any]) -> None:
    settings.MAILERS = {**settings.MAILERS, **entries}


def smtp(server: Any, **overrides: Any) -> dict[str, Any]:
    return {"BACKEND": SMTP_BACKEND, "OPTIONS": server.options(**overrides)}


def only_log() -> MailLog:
    logs = list(MailLog.objects.all())
    assert len(logs) == 1, logs
    return logs[0]


def test_check_connects_with_starttls_and_auth_then_quits_without_sending(
    settings, smtp_server
) -> None:
    use_mailers(settings, relay=smtp(smtp_server))

    code, out, _ = run("--check", "--using", "relay")

    assert code == 0, out
    assert out.startswith("ok")
    assert f"relay: smtp 127.0.0.1:{smtp_server.port}, STARTTLS TLSv1." in out
    assert "authenticated as mailops" in out
    assert smtp_server.messages == [], "a check must not send"
    assert smtp_server.connections == 1
    assert smtp_server.auth_attempts >= 1
    log = only_log()
    assert log.status == MailStatus.CHECKED
    assert log.trigger == MailTrigger.CHECK
    assert (log.mailer, log.backend, log.recipient) == ("relay", SMTP_BACKEND, "")
    assert (log.error, log.smtp_code) == ("", None)
    assert "Connection check: smtp 127.0.0.1" in log.subject
    assert smtp_server.password not in all_columns(log)


def test_check_over_implicit_tls_reports_the_tls_version(settings, smtps_server) -> None:
    use_mailers(settings, default=smtp(smtps_server))

    code, out, _ = run("--check")

    assert code == 0, out
    assert "implicit TLS TLSv1." in out
    assert "authenticated as mailops" in out
    assert only_log().status == MailStatus.CHECKED


def test_bad_password_reports_the_servers_refusal_and_never_the_password(
    settings, smtp_server
) -> None:
    # The server quotes the submitted credentials back, as some do.
    smtp_server.echo_credentials_on_auth_failure = True
    use_mailers(settings, relay=smtp(smtp_server, password=WRONG_PASSWORD))

    code, out, err = run("--check", "--using", "relay")

    assert code == 1
    assert "FAILED" in out
    assert "AUTH: authentication failed: 535 5.7.8 Username and Password not accepted." in out
    assert "App Password" in out, "the refusal carries a hint"
    assert "relay" in err
    log = only_log()
    assert log.status == MailStatus.CHECK_FAILED
    assert log.smtp_code == 535
    assert "535 5.7.8" in log.error
    for text in (out, err, all_columns(log)):
        assert WRONG_PASSWORD not in text
    assert "********" in log.error


def test_application_specific_password_refusal_534_gets_its_hint(settings, smtp_server) -> None:
    smtp_server.auth_failure_reply = "534 5.7.9 Application-specific password required."
    use_mailers(settings, relay=smtp(smtp_server, password=WRONG_PASSWORD))

    code, out, _ = run("--check", "--using", "relay")

    assert code == 1
    assert "534 5.7.9 Application-specific password required." in out
    assert "create an App Password" in out
    assert only_log().smtp_code == 534


def test_mailer_requiring_starttls_against_a_server_without_tls_is_refused(
    settings, smtp_server_factory
) -> None:
    server = smtp_server_factory(tls_mode="none")
    use_mailers(settings, relay=smtp(server, use_tls=True))

    code, out, _ = run("--check", "--using", "relay")

    assert code == 1
    assert "STARTTLS: the server does not offer STARTTLS, which the mailer requires" in out
    log = only_log()
    assert log.status == MailStatus.CHECK_FAILED
    assert "does not offer STARTTLS" in log.error
    assert server.auth_attempts == 0, "no password may cross an unencrypted connection"


def test_mailer_without_tls_against_a_starttls_server_cannot_authenticate(
    settings, smtp_server
) -> None:
    use_mailers(settings, relay=smtp(smtp_server, use_tls=False))

    code, out, _ = run("--check", "--using", "relay")

    assert code == 1
    assert "AUTH: the server does not offer AUTH before STARTTLS" in out
    assert "use smtp+tls://" in out
    assert "warning: the server offers STARTTLS but the mailer does not use TLS" in out
    assert smtp_server.auth_attempts == 0
    assert only_log().status == MailStatus.CHECK_FAILED


def test_mailer_without_tls_or_auth_passes_with_a_warning_when_starttls_is_offered(
    settings, smtp_server
) -> None:
    use_mailers(settings, relay=smtp(smtp_server, use_tls=False, username=None, password=None))

    code, out, _ = run("--check", "--using", "relay")

    assert code == 0, out
    assert "no TLS" in out
    assert "no AUTH configured" in out
    assert "warning: the server offers STARTTLS but the mailer does not use TLS" in out
    log = only_log()
    assert log.status == MailStatus.CHECKED
    assert "Warning: the server offers STARTTLS" in log.body


def test_plain_server_with_plain_mailer_authenticates(settings, smtp_server_factory) -> None:
    server = smtp_server_factory(tls_mode="none")
    use_mailers(settings, relay=smtp(server))

    code, out, _ = run("--check", "--using", "relay")

    assert code == 0, out
    assert "no TLS, authenticated as mailops" in out
    assert "warning" not in out


def test_unreachable_server_is_a_failed_check(settings, closed_port) -> None:
    use_mailers(
        settings,
        relay={
            "BACKEND": SMTP_BACKEND,
            "OPTIONS": {"host": "127.0.0.1", "port": closed_port, "use_tls": True, "timeout": 5},
        },
    )

    code, out, _ = run("--check", "--using", "relay")

    assert code == 1
    assert f"relay: smtp 127.0.0.1:{closed_port}, STARTTLS, connect: connection refused" in out
    log = only_log()
    assert log.status == MailStatus.CHECK_FAILED
    assert "connection refused" in log.error


def test_mailer_without_timeout_is_checked_with_a_bounded_one_and_warned(
    settings, smtp_server
) -> None:
    use_mailers(settings, relay=smtp(smtp_server, timeout=None))

    code, out, _ = run("--check", "--using", "relay")

    assert code == 0, out
    assert "warning: the mailer has no timeout (mailops.W005)" in out


def test_local_mailers_have_nothing_to_connect_to_and_log_no_check(settings, tmp_path) -> None:
    outbox = tmp_path / "outbox"
    use_mailers(
        settings,
        outbox={
            "BACKEND": "mailops.backends.outbox.EmailBackend",
            "OPTIONS": {"file_path": str(outbox)},
        },
    )

    code, out, _ = run("--check", "--all-mailers")

    assert code == 0, out
    assert out.splitlines() == [
        "local       default: nothing to connect to: the locmem mailer keeps mail in memory",
        "local       outbox: nothing to connect to: the outbox mailer writes .eml files in "
        f"{outbox}",
    ]
    # No connection was verified, so no row may claim a last check.
    assert not MailLog.objects.exists()


def test_a_file_mailer_whose_directory_cannot_be_made_fails_its_check(settings, tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    use_mailers(
        settings,
        outbox={
            "BACKEND": "mailops.backends.outbox.EmailBackend",
            "OPTIONS": {"file_path": str(blocker / "outbox")},
        },
    )

    code, out, _ = run("--check", "--using", "outbox")

    assert code == 1
    assert out.startswith("FAILED      outbox: outbox, configuration: MAILERS['outbox']: Could not")
    # A failure is worth its row: the Mailers page shows it as the last check.
    assert MailLog.objects.get().status == MailStatus.CHECK_FAILED


def test_backend_mailops_cannot_check_is_reported_not_failed_and_not_logged(settings) -> None:
    # Provider mailers are checked through their API: tests/test_provider_checks.py.
    backend = "django.core.mail.backends.base.BaseEmailBackend"
    use_mailers(settings, custom={"BACKEND": backend})

    code, out, err = run("--check", "--using", "custom")

    assert code == 0, err
    assert out == (
        f"unverified  custom: base, connection check not supported for backend {backend}: "
        "send a test mail instead (sendtestmail ADDRESS --using custom)\n"
    )
    # Nothing was verified, so nothing may claim a last check.
    assert not MailLog.objects.exists()


def test_provider_mailer_without_its_api_key_fails_the_check(settings) -> None:
    use_mailers(settings, postmark={"BACKEND": "anymail.backends.postmark.EmailBackend"})

    code, out, _ = run("--check", "--using", "postmark")

    assert code == 1
    assert "FAILED" in out
    assert "configuration:" in out
    assert "server_token" in out


def test_misconfigured_smtp_mailer_is_a_failed_check_not_a_crash(settings) -> None:
    use_mailers(
        settings,
        relay={
            "BACKEND": SMTP_BACKEND,
            "OPTIONS": {"host": "127.0.0.1", "use_tls": True, "use_ssl": True},
        },
    )

    code, out, _ = run("--check", "--using", "relay")

    assert code == 1
    assert "configuration: MAILERS['relay']: The 'use_ssl' and 'use_tls' OPTIONS" in out
    assert only_log().status == MailStatus.CHECK_FAILED


def test_all_mailers_prints_one_line_each_and_fails_if_any_fails(
    settings, smtp_server, closed_port
) -> None:
    use_mailers(
        settings,
        good=smtp(smtp_server),
        bad=smtp(smtp_server, password=WRONG_PASSWORD),
        gone={"BACKEND": SMTP_BACKEND, "OPTIONS": {"host": "127.0.0.1", "port": closed_port}},
    )

    code, out, err = run("--check", "--all-mailers")

    assert code == 1
    lines = out.splitlines()
    assert [line.split()[0] for line in lines if not line.startswith(" ")] == [
        "local",
        "local",
        "ok",
        "FAILED",
        "FAILED",
    ]
    assert "2 of 5 mailer checks did not pass: bad, gone." in err
    # The local mailers (default, outbox) had nothing to connect to: no row.
    assert set(MailLog.objects.values_list("mailer", "status")) == {
        ("good", MailStatus.CHECKED),
        ("bad", MailStatus.CHECK_FAILED),
        ("gone", MailStatus.CHECK_FAILED),
    }
    assert WRONG_PASSWORD not in out + err


def test_all_mailers_exits_zero_when_every_check_passes(settings, smtp_server) -> None:
    use_mailers(settings, relay=smtp(smtp_server))

    code, out, _ = run("--check", "--all-mailers", "--verbosity", "0")

    assert code == 0
    assert out == "", "quiet when everything passed"
    assert MailLog.objects.filter(status=MailStatus.CHECKED).count() == 1


def test_json_output_describes_each_mailer(settings, smtp_server) -> None:
    use_mailers(settings, relay=smtp(smtp_server), bad=smtp(smtp_server, password=WRONG_PASSWORD))

    code, out, _ = run("--check", "--all-mailers", "--json")

    assert code == 1
    payload = json.loads(out)
    assert payload["ok"] is False
    by_alias = {item["alias"]: item for item in payload["mailers"]}
    relay = by_alias["relay"]
    assert relay["ok"] is True
    assert relay["outcome"] == CheckOutcome.PASSED
    assert (relay["host"], relay["port"]) == ("127.0.0.1", smtp_server.port)
    assert relay["tls_mode"] == "STARTTLS"
    assert relay["tls_version"].startswith("TLSv1.")
    assert relay["reachable"] is True
    assert relay["authenticated"] is True
    assert relay["log_id"] == MailLog.objects.get(mailer="relay").pk
    bad = by_alias["bad"]
    assert (bad["ok"], bad["authenticated"], bad["smtp_code"]) == (False, False, 535)
    assert "535" in bad["error"]
    assert WRONG_PASSWORD not in out
    assert smtp_server.password not in out


def test_json_for_one_passing_mailer(settings, smtps_server) -> None:
    use_mailers(settings, relay=smtp(smtps_server))

    code, out, _ = run("--check", "--using", "relay", "--json")

    assert code == 0
    payload = json.loads(out)
    assert payload["ok"] is True
    assert [item["alias"] for item in payload["mailers"]] == ["relay"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--check", "alice@example.com"), "--check sends nothing; drop EMAIL."),
        (("--check", "--staff", "--dry-run"), "--check sends nothing; drop --staff, --dry-run."),
        (("--all-mailers",), "--all-mailers needs --check."),
        (("--check", "--all-mailers", "--using", "default"), "either --using ALIAS or"),
        (("--check", "--using", "nope"), "Unknown mailer 'nope'"),
    ],
)
def test_usage_errors_exit_2_and_log_nothing(args: tuple[str, ...], message: str) -> None:
    code, _, err = run(*args)

    assert code == 2
    assert message in err
    assert not MailLog.objects.exists()


def test_service_records_who_triggered_the_check(settings, smtp_server, make_user) -> None:
    admin_user = make_user("ops")
    use_mailers(settings, relay=smtp(smtp_server))

    result = verify_connection("relay", triggered_by=admin_user)

    assert result.ok
    log = MailLog.objects.get(pk=result.log_id)
    assert log.triggered_by == admin_user
    assert log.trigger == MailTrigger.CHECK


def test_service_refuses_an_unknown_alias() -> None:
    with pytest.raises(UnknownMailer):
        verify_connection("nope")
    assert not MailLog.objects.exists()
