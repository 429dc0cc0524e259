"""A host project on Django's classic mail settings (``EMAIL_*``, no ``MAILERS``).

Django builds the ``default`` mailer from them; every mailops feature works
on it: checks judge it, ``sendtestmail`` sends through it and logs, the
admin action, the Mailers page, ``--check``, the doctor and health list it.
"""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.core.management import CommandError, call_command
from django.core.management.base import SystemCheckError
from django.test import Client

from mailops.models import MailLog, MailStatus
from tests.admin_fixtures import form_fields, shown_messages
from tests.commands import all_columns, run_sendtestmail

pytestmark = [
    pytest.mark.django_db,
    # Django warns whenever a test overrides a deprecated setting (override_settings
    # counts as use "outside Django"); these tests change EMAIL_* on purpose. Only
    # that warning is let through: any other deprecation warning still fails.
    pytest.mark.filterwarnings(
        r"ignore:The EMAIL_\w+ setting is deprecated\. Migrate to MAILERS"
        ":django.utils.deprecation.RemovedInDjango2028Warning"
    ),
]

MEMBERS = "/console/accounts/member/"
MAILLOG = "/console/mailops/maillog/"


def check_output(**options: Any) -> str:
    """``manage.py check``'s report, whether it passes or fails."""
    try:
        call_command("check", **options)
    except SystemCheckError as error:
        return str(error)
    return ""


def test_the_settings_have_no_mailers_only_the_classic_email_settings() -> None:
    assert not hasattr(django_settings, "MAILERS")


def test_check_is_clean_on_the_classic_settings(classic_smtp) -> None:
    call_command("check", fail_level="WARNING")


def test_check_catches_a_gmail_host_typo_in_email_host(settings) -> None:
    settings.EMAIL_HOST = "smtp.google.com"
    settings.EMAIL_PORT = 587

    report = check_output(fail_level="WARNING")

    assert (
        "(mailops.W001) Mailer 'default': host 'smtp.google.com' looks like a mistyped " in report
    )
    assert "HINT: Set EMAIL_HOST to 'smtp.gmail.com'" in report


def test_check_judges_a_gmail_password_from_email_host_password(settings) -> None:
    settings.EMAIL_HOST = "smtp.gmail.com"
    settings.EMAIL_PORT = 587

    report = check_output()

    assert "(mailops.E005) Gmail mailer 'default' has a password that is not a 16-letter " in report
    assert "as EMAIL_HOST_PASSWORD, with the Gmail address as EMAIL_HOST_USER" in report
    assert "classic-secret" not in report


@pytest.mark.parametrize(
    ("tls", "ssl", "port", "check_id"),
    [(False, True, 587, "mailops.W002"), (True, False, 465, "mailops.W003")],
)
def test_check_catches_a_port_that_does_not_match_the_tls_setting(
    settings, tls, ssl, port, check_id
) -> None:
    settings.EMAIL_HOST = "smtp.example.com"
    settings.EMAIL_USE_TLS, settings.EMAIL_USE_SSL, settings.EMAIL_PORT = tls, ssl, port

    assert f"({check_id}) Mailer 'default' " in check_output(fail_level="WARNING")


def test_check_catches_implicit_tls_on_port_25(settings) -> None:
    settings.EMAIL_HOST = "smtp.example.com"
    settings.EMAIL_USE_TLS, settings.EMAIL_USE_SSL, settings.EMAIL_PORT = False, True, 25

    report = check_output(fail_level="WARNING")

    assert "(mailops.W013) Mailer 'default' uses implicit TLS on port 25" in report
    assert "HINT: Set EMAIL_PORT to 465." in report


def test_check_names_email_timeout_when_it_is_missing(settings) -> None:
    settings.EMAIL_TIMEOUT = None

    report = check_output(fail_level="WARNING")

    assert "(mailops.W005) Mailer 'default' (127.0.0.1:9) has no timeout" in report
    assert "HINT: Set EMAIL_TIMEOUT in seconds" in report


def test_check_reports_tls_and_ssl_both_on_without_a_traceback(settings) -> None:
    settings.EMAIL_USE_SSL = True

    report = check_output()

    assert "(mailops.E002) Mailer 'default' (built by Django from the EMAIL_* settings) " in report
    assert "mutually exclusive" in report


def test_check_on_a_console_backend_is_clean(settings) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

    call_command("check", fail_level="WARNING")


def test_sendtestmail_sends_through_the_smtp_server_and_logs_a_sent_row(classic_smtp) -> None:
    code, out, err = run_sendtestmail("ada@host.example")

    assert (code, err) == (0, "")
    [received] = classic_smtp.wait_for_messages(1)
    assert received.rcpt_tos == ["ada@host.example"]
    [row] = MailLog.objects.all()
    assert (row.recipient, row.status, row.mailer) == (
        "ada@host.example",
        MailStatus.SENT,
        "default",
    )
    assert row.backend == "django.core.mail.backends.smtp.EmailBackend"
    assert row.message_id
    assert row.message_id == received.message_id
    assert classic_smtp.password not in all_columns(row) + out


def test_sendtestmail_check_connects_to_the_classic_mailer(classic_smtp) -> None:
    code, out, err = run_sendtestmail("--check")

    assert (code, err) == (0, "")
    assert "default" in out
    assert f"127.0.0.1:{classic_smtp.port}" in out
    assert classic_smtp.connections == 1
    assert classic_smtp.password not in out


def test_sendtestmail_check_reports_a_wrong_password(classic_smtp, settings) -> None:
    settings.EMAIL_HOST_PASSWORD = "not-the-password"

    code, out, err = run_sendtestmail("--check")

    assert code != 0
    assert "535" in out + err
    assert "not-the-password" not in out + err


def test_admin_send_test_mail_action_sends_through_the_classic_mailer(
    classic_smtp, console_client, make_member
) -> None:
    ada = make_member("ada", "ada@host.example")

    page = console_client.post(
        MEMBERS, {"action": "send_test_mail", "_selected_action": [str(ada.pk)], "index": "0"}
    )
    assert page.status_code == 200
    fields = form_fields(page.content.decode(), "send-test-mail-form")
    assert fields["mailer"] == ["default"]
    done = console_client.post(MEMBERS, fields, follow=True)

    assert done.status_code == 200
    [(level, text)] = shown_messages(done)
    assert level == "success"
    assert "1 sent" in text
    [received] = classic_smtp.wait_for_messages(1)
    assert received.rcpt_tos == ["ada@host.example"]
    [row] = MailLog.objects.all()
    assert (row.status, row.mailer, row.user_id) == (MailStatus.SENT, "default", ada.pk)


def test_the_mailers_page_lists_the_classic_default_mailer(classic_smtp, console_client) -> None:
    response = console_client.get(f"{MAILLOG}mailers/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "default" in html
    row = html[html.index('id="mailer-default"') :].split("</tr>")[0]
    assert "<td>127.0.0.1</td>" in row
    assert f"<td>{classic_smtp.port}</td>" in row
    assert "<td>STARTTLS</td>" in row
    assert classic_smtp.password not in html


def test_health_and_metrics_list_the_classic_default_mailer(classic_smtp, settings) -> None:
    settings.MAILOPS = {**settings.MAILOPS, "HEALTH_TOKEN": "health-token"}
    client = Client(headers={"Authorization": "Bearer health-token"})

    health = client.get("/mail/health/")
    metrics = client.get("/mail/metrics")

    assert list(json.loads(health.content)["mailers"]) == ["default"]
    assert 'mailer="default"' in metrics.content.decode()


def test_maildoctor_checks_the_classic_default_mailer(classic_smtp) -> None:
    out = StringIO()
    # No DNS server answers in this project: "could not check" is an error (1),
    # not a usage error (2, "There is no mailer 'default'").
    with pytest.raises(CommandError) as raised:
        call_command("maildoctor", "--using", "default", "--json", stdout=out)

    assert raised.value.returncode == 1

    [report] = json.loads(out.getvalue())["mailers"]
    assert report["alias"] == "default"


def test_check_says_the_audit_misses_sends_without_using_on_classic_settings(settings) -> None:
    settings.MAILOPS = {**settings.MAILOPS, "AUDIT_ALL_MAIL": True}

    report = check_output(fail_level="WARNING")

    assert "(mailops.W014) MAILOPS['AUDIT_ALL_MAIL'] is on, but without MAILERS" in report


def test_the_audit_logs_sends_through_the_classic_default_mailer(classic_smtp, settings) -> None:
    settings.MAILOPS = {**settings.MAILOPS, "AUDIT_ALL_MAIL": True, "AUDIT_WRITE": "inline"}

    sent = mail.send_mail("Hello", "Body", None, ["ada@host.example"], using="default")

    assert sent == 1
    [received] = classic_smtp.wait_for_messages(1)
    [row] = MailLog.objects.all()
    assert (row.recipient, row.status) == ("ada@host.example", MailStatus.SENT)
    assert (row.mailer, row.backend) == ("default", "django.core.mail.backends.smtp.EmailBackend")
    assert row.message_id == received.message_id


def test_an_alias_other_than_default_is_e001_naming_the_classic_settings(settings) -> None:
    settings.MAILOPS = {**settings.MAILOPS, "DEFAULT_MAILER": "relay"}

    report = check_output()

    assert "(mailops.E001) MAILOPS['DEFAULT_MAILER'] names mailer 'relay', which Django " in report
    assert "(no MAILERS: only 'default', from the EMAIL_* settings) (defined: default)." in report


def test_redaction_follows_a_changed_email_host_password(settings) -> None:
    from mailops.redaction import redact

    settings.EMAIL_HOST_PASSWORD = "first-app-password"
    assert "first-app-password" not in redact("535 rejected first-app-password")

    settings.EMAIL_HOST_PASSWORD = "second-app-password"
    assert "second-app-password" not in redact("535 rejected second-app-password")
