"""System checks: each mail configuration mistake is reported with an id and a hint.

Every check is tested both ways (the mistake is reported; the correct
configuration is not), directly and through ``manage.py check``; and
``check --deploy`` is clean for a production-like environment.
"""

from __future__ import annotations

import os
import runpy
import secrets
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from mailops.checks import (
    check_debug_with_real_mailers,
    check_mailers,
    check_mailops_settings,
)
from mailops.mailers.config_checks import suggest_host
from tests.worker_processes import ROOT, manage

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
LOCMEM_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
POSTMARK_BACKEND = "anymail.backends.postmark.EmailBackend"
APP_PASSWORD = "abcd efgh ijkl mnop"


def smtp(**options: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {"host": "smtp.example.com", "use_tls": True, "timeout": 10}
    return {"BACKEND": SMTP_BACKEND, "OPTIONS": {**defaults, **options}}


def gmail(**options: Any) -> dict[str, Any]:
    account = {
        "host": "smtp.gmail.com",
        "port": 587,
        "username": "me@gmail.com",
        "password": APP_PASSWORD,
    }
    return smtp(**{**account, **options})


def only(settings: Any, **mailers: dict[str, Any]) -> None:
    """MAILERS with exactly these aliases (plus a locmem default)."""
    settings.MAILERS = {"default": {"BACKEND": LOCMEM_BACKEND}, **mailers}


def run_all() -> list[checks.CheckMessage]:
    return check_mailops_settings() + check_mailers() + check_debug_with_real_mailers()


def ids(messages: list[checks.CheckMessage]) -> list[str]:
    return sorted(str(message.id) for message in messages)


def find(messages: list[checks.CheckMessage], check_id: str) -> checks.CheckMessage:
    matching = [message for message in messages if message.id == check_id]
    assert len(matching) == 1, (check_id, [(m.id, m.msg) for m in messages])
    return matching[0]


# --- a correct configuration is quiet ----------------------------------------


def test_correct_configurations_report_nothing(settings) -> None:
    only(
        settings,
        relay=smtp(port=587, username="u", password="p"),
        ssl=smtp(host="smtp.example.com", use_tls=False, use_ssl=True, port=465),
        gmail=gmail(),
        local=smtp(host="127.0.0.1", use_tls=False, port=1025, username="u", password="p"),
        postmark={"BACKEND": POSTMARK_BACKEND, "OPTIONS": {"server_token": "token"}},
    )
    settings.MAILOPS = {
        "DEFAULT_MAILER": "relay",
        "FROM_EMAILS": {"gmail": "Me <ME@gmail.com>", "relay": "ops@example.com"},
        "THROTTLE": {"gmail": {"daily_quota": 500}},
    }

    assert run_all() == []


def test_test_settings_are_clean() -> None:
    assert run_all() == []


# --- E001: aliases named by MAILOPS settings ----------------------------------


def test_default_mailer_not_in_mailers_is_an_error(settings) -> None:
    settings.MAILOPS = {"DEFAULT_MAILER": "gmial"}

    error = find(check_mailops_settings(), "mailops.E001")

    assert isinstance(error, checks.Error)
    assert "MAILOPS['DEFAULT_MAILER'] names mailer 'gmial'" in error.msg
    assert "(defined: default, outbox)" in error.msg
    assert "MAILER_GMIAL_URL" in error.hint


def test_from_emails_and_throttle_for_unknown_aliases_are_errors(settings) -> None:
    settings.MAILOPS = {
        "FROM_EMAILS": {"outbox": "a@example.com", "backup": "b@example.com"},
        "THROTTLE": {"relay": {"rate": 1}},
    }

    messages = check_mailops_settings()

    assert ids(messages) == ["mailops.E001", "mailops.E001"]
    text = " ".join(message.msg for message in messages)
    assert "MAILOPS['FROM_EMAILS']['backup'] names mailer 'backup'" in text
    assert "MAILOPS['THROTTLE']['relay'] names mailer 'relay'" in text


# --- W008: unknown MAILOPS keys ------------------------------------------------


def test_unknown_mailops_key_is_a_warning_with_a_suggestion(settings) -> None:
    settings.MAILOPS = {"DEFAULT_MAILERS": "default"}

    warning = find(check_mailops_settings(), "mailops.W008")

    assert "unknown key 'DEFAULT_MAILERS'" in warning.msg
    assert "Did you mean 'DEFAULT_MAILER'?" in warning.hint


# --- E002: BACKEND cannot be imported -----------------------------------------


def test_backend_that_cannot_be_imported_is_an_error(settings) -> None:
    only(settings, relay={"BACKEND": "mailops.no_such_module.EmailBackend"})

    error = find(check_mailers(), "mailops.E002")

    assert "Mailer 'relay': BACKEND 'mailops.no_such_module.EmailBackend' cannot be" in error.msg
    assert "MAILERS['relay']['BACKEND']" in error.hint


# --- E003: SMTP without host --------------------------------------------------


def test_smtp_mailer_without_host_is_an_error(settings) -> None:
    only(settings, relay={"BACKEND": SMTP_BACKEND, "OPTIONS": {"port": 587}})

    assert ids(check_mailers()) == ["mailops.E003"]
    assert "smtp+tls://" in find(check_mailers(), "mailops.E003").hint


def test_backend_defaults_to_smtp_under_mailers(settings) -> None:
    # Django's MAILERS default BACKEND is SMTP, so a missing host still matters.
    only(settings, relay={"OPTIONS": {}})

    assert ids(check_mailers()) == ["mailops.E003"]


# --- E004: STARTTLS and implicit TLS ------------------------------------------


def test_starttls_and_implicit_tls_together_are_reported_not_raised(settings) -> None:
    # Building this mailer raises InvalidMailer; the check reads the settings instead.
    only(settings, relay=smtp(use_tls=True, use_ssl=True))

    messages = check_mailers()

    assert ids(messages) == ["mailops.E004"]
    assert "both STARTTLS (use_tls) and implicit TLS (use_ssl)" in messages[0].msg
    assert "Set only one" in messages[0].hint


def test_one_tls_mode_is_fine(settings) -> None:
    only(settings, a=smtp(use_tls=True), b=smtp(use_tls=False, use_ssl=True))

    assert check_mailers() == []


# --- E006: the backend refuses its options --------------------------------------


def test_provider_without_its_api_key_is_an_error(settings) -> None:
    only(settings, postmark={"BACKEND": POSTMARK_BACKEND})

    error = find(check_mailers(), "mailops.E006")

    assert "Mailer 'postmark' (anymail Postmark) cannot be built" in error.msg
    assert "server_token" in error.msg
    assert "ANYMAIL" in error.hint


def test_provider_with_its_api_key_is_fine(settings) -> None:
    only(settings, postmark={"BACKEND": POSTMARK_BACKEND, "OPTIONS": {"server_token": "t"}})

    assert check_mailers() == []


def test_misspelled_smtp_option_is_an_error_with_a_suggestion(settings) -> None:
    only(settings, relay=smtp(use_tsl=True))

    error = find(check_mailers(), "mailops.E006")

    assert "Unknown options 'use_tsl'" in error.msg
    assert "Did you mean 'use_tsl' -> 'use_tls'?" in error.hint


def test_provider_secret_is_not_echoed_by_a_refusal(settings) -> None:
    only(
        settings,
        postmark={
            "BACKEND": POSTMARK_BACKEND,
            "OPTIONS": {"server_token": "secret-token-xyz", "bogus_option": "x"},
        },
    )

    messages = check_mailers()

    assert ids(messages) == ["mailops.E006"]
    assert "secret-token-xyz" not in messages[0].msg + messages[0].hint


# --- W001: misspelled well-known hosts -----------------------------------------


@pytest.mark.parametrize(
    ("host", "suggestion"),
    [
        ("smtp.google.com", "smtp.gmail.com"),
        ("smtp.gmail.co", "smtp.gmail.com"),
        ("smtp.gmial.com", "smtp.gmail.com"),
        ("gmail.com", "smtp.gmail.com"),
        ("smtp-relay.gmail.co", "smtp-relay.gmail.com"),
        ("smtp.office365.co", "smtp.office365.com"),
        ("smtp.outlook.com", "smtp-mail.outlook.com"),
        ("smtp.sendgrid.com", "smtp.sendgrid.net"),
        ("smtp.sendgird.net", "smtp.sendgrid.net"),
        ("smtp.mailgun.com", "smtp.mailgun.org"),
        ("smtp.eu.mailgun.com", "smtp.eu.mailgun.org"),
        ("smtp-relay.brevo.co", "smtp-relay.brevo.com"),
        ("smtp.brevo.com", "smtp-relay.brevo.com"),
        ("smtp.sendinblue.com", "smtp-relay.brevo.com"),
        ("smtp.postmark.com", "smtp.postmarkapp.com"),
        ("smtp.postmarkapp.co", "smtp.postmarkapp.com"),
        ("email.us-east-1.amazonaws.com", "email-smtp.us-east-1.amazonaws.com"),
        ("email-smtp.eu-west-1.amazonaws.co", "email-smtp.eu-west-1.amazonaws.com"),
        ("email-smtp.amazonaws.com", "email-smtp.<region>.amazonaws.com"),
    ],
)
def test_misspelled_well_known_hosts_get_the_right_one_suggested(host, suggestion) -> None:
    found = suggest_host(host)

    assert found is not None
    assert found[1] == suggestion


@pytest.mark.parametrize(
    "host",
    [
        "smtp.gmail.com",
        "SMTP.Gmail.com.",
        # Google's older name for the same service: valid, so not flagged.
        "smtp.googlemail.com",
        "smtp-relay.gmail.com",
        "aspmx.l.google.com",
        "smtp.office365.com",
        "smtp-mail.outlook.com",
        "contoso-com.mail.protection.outlook.com",
        "smtp.sendgrid.net",
        "smtp.mailgun.org",
        "smtp.eu.mailgun.org",
        "smtp-relay.brevo.com",
        "smtp-relay.sendinblue.com",
        "smtp.postmarkapp.com",
        "smtp-broadcasts.postmarkapp.com",
        "email-smtp.us-east-1.amazonaws.com",
        "email-smtp.us-gov-west-1.amazonaws.com",
        # Other providers and private relays are not "close to Gmail".
        "smtp.gmx.com",
        "smtp.mail.ru",
        "email.example.org",
        "mail.example.com",
        "ec2-3-4-5-6.compute-1.amazonaws.com",
        "127.0.0.1",
        "localhost",
    ],
)
def test_correct_and_unrelated_hosts_are_not_flagged(host) -> None:
    assert suggest_host(host) is None


def test_misspelled_host_warning_names_the_mailer_and_the_fix(settings) -> None:
    only(settings, relay=smtp(host="smtp.google.com", port=587))

    warning = find(check_mailers(), "mailops.W001")

    assert isinstance(warning, checks.Warning)
    assert "Mailer 'relay': host 'smtp.google.com' looks like a mistyped Gmail SMTP host" in (
        warning.msg
    )
    assert "did you mean 'smtp.gmail.com'?" in warning.msg
    assert "MAILERS['relay']['OPTIONS']['host'] to 'smtp.gmail.com'" in warning.hint


# --- W002 / W003: ports and TLS modes ------------------------------------------


@pytest.mark.parametrize(
    ("options", "check_id", "text"),
    [
        ({"port": 587, "use_tls": False}, "mailops.W002", "port 587 without STARTTLS"),
        (
            {"port": 587, "use_tls": False, "use_ssl": True},
            "mailops.W002",
            "implicit TLS (use_ssl) on port 587",
        ),
        ({"port": 465, "use_tls": True}, "mailops.W003", "STARTTLS (use_tls) on port 465"),
        ({"port": 465, "use_tls": False}, "mailops.W003", "port 465 without TLS"),
    ],
)
def test_port_that_does_not_match_the_tls_mode_is_a_warning(
    settings, options, check_id, text
) -> None:
    only(settings, relay=smtp(**options))

    messages = check_mailers()

    assert ids(messages) == [check_id]
    assert "Mailer 'relay' " in messages[0].msg
    assert text in messages[0].msg


@pytest.mark.parametrize(
    "options",
    [
        {"port": 587, "use_tls": True},
        {"port": 465, "use_ssl": True, "use_tls": False},
        {"port": 2525, "use_tls": True},
        # No port: Django picks the one that matches the TLS mode.
        {"use_ssl": True, "use_tls": False},
    ],
)
def test_port_matching_the_tls_mode_is_fine(settings, options) -> None:
    only(settings, relay=smtp(**options))

    assert check_mailers() == []


# --- W004: a password without TLS -----------------------------------------------


def test_password_to_a_remote_server_without_tls_is_a_warning(settings) -> None:
    only(settings, relay=smtp(use_tls=False, port=25, username="u", password="p"))

    warning = find(check_mailers(), "mailops.W004")

    assert "sends its username and password to smtp.example.com:25 without TLS" in warning.msg


@pytest.mark.parametrize(
    "options",
    [
        {"use_tls": False, "port": 25},  # no credentials
        {"use_tls": False, "host": "localhost", "username": "u", "password": "p"},
        {"use_tls": True, "username": "u", "password": "p"},
    ],
)
def test_no_credentials_loopback_or_tls_is_fine(settings, options) -> None:
    only(settings, relay=smtp(**options))

    assert check_mailers() == []


# --- W005: no timeout ------------------------------------------------------------


def test_smtp_mailer_without_timeout_is_a_warning(settings) -> None:
    only(settings, relay=smtp(timeout=None))

    warning = find(check_mailers(), "mailops.W005")

    assert "Mailer 'relay' (smtp.example.com:587) has no timeout" in warning.msg
    assert "?timeout=20" in warning.hint


# --- E005: Gmail App Password ---------------------------------------------------


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (
            {"password": "my account password"},
            "has a password that is not a 16-letter App Password",
        ),
        (
            {"password": "abcd efgh ijkl mno1"},
            "has a password that is not a 16-letter App Password",
        ),
        ({"password": "abcdefghijklmnopq"}, "has a password that is not a 16-letter App Password"),
        ({"password": ""}, "has no password"),
        ({"username": ""}, "has no username"),
    ],
)
def test_gmail_without_a_16_letter_app_password_is_an_error(settings, options, problem) -> None:
    only(settings, gmail=gmail(**options))
    settings.MAILOPS = {"FROM_EMAILS": {"gmail": "me@gmail.com"}}

    error = find(check_mailers(), "mailops.E005")

    assert isinstance(error, checks.Error)
    assert f"Gmail mailer 'gmail' {problem}" in error.msg
    assert "myaccount.google.com/apppasswords" in error.hint
    password = options.get("password")
    if password:
        assert password not in error.msg + error.hint


@pytest.mark.parametrize("password", [APP_PASSWORD, "abcdefghijklmnop", "ABCD EFGH IJKL MNOP"])
def test_gmail_app_password_with_or_without_spaces_is_fine(settings, password) -> None:
    only(settings, gmail=gmail(password=password))
    settings.MAILOPS = {"FROM_EMAILS": {"gmail": "me@gmail.com"}}

    assert check_mailers() == []


def test_googlemail_host_gets_the_gmail_checks_too(settings) -> None:
    only(settings, gmail=gmail(host="smtp.googlemail.com", password="hunter2"))
    settings.MAILOPS = {"FROM_EMAILS": {"gmail": "me@gmail.com"}}

    assert ids(check_mailers()) == ["mailops.E005"]


# --- W006: Gmail From ------------------------------------------------------------


def test_gmail_from_other_than_the_account_is_a_warning(settings) -> None:
    only(settings, gmail=gmail())
    settings.DEFAULT_FROM_EMAIL = "noreply@example.com"

    warning = find(check_mailers(), "mailops.W006")

    assert (
        "Gmail mailer 'gmail' sends From 'noreply@example.com' (DEFAULT_FROM_EMAIL) but "
        "signs in as 'me@gmail.com'"
    ) in warning.msg
    assert "Send mail as" in warning.msg
    assert "Set DEFAULT_FROM_EMAIL to 'me@gmail.com'" in warning.hint


def test_gmail_from_setting_for_the_alias_is_named(settings) -> None:
    only(settings, gmail=gmail())
    settings.MAILOPS = {"FROM_EMAILS": {"gmail": "Ops <ops@example.com>"}}

    warning = find(check_mailers(), "mailops.W006")

    assert "sends From 'ops@example.com' (MAILOPS['FROM_EMAILS']['gmail'])" in warning.msg


@pytest.mark.parametrize("sender", ["me@gmail.com", "Me <ME@Gmail.com>"])
def test_gmail_from_the_account_is_fine(settings, sender) -> None:
    only(settings, gmail=gmail())
    settings.DEFAULT_FROM_EMAIL = sender

    assert check_mailers() == []


# --- W007: DEBUG with real mail ---------------------------------------------------


def test_debug_with_a_real_smtp_or_provider_mailer_is_a_warning(settings) -> None:
    settings.DEBUG = True
    only(
        settings,
        relay=smtp(),
        postmark={"BACKEND": POSTMARK_BACKEND, "OPTIONS": {"server_token": "t"}},
        catcher=smtp(host="127.0.0.1", port=1025, use_tls=False),
    )

    warning = find(check_debug_with_real_mailers(), "mailops.W007")

    assert (
        "DEBUG is on and mailers 'relay' (smtp smtp.example.com:587), 'postmark' "
        "(anymail Postmark) deliver real mail"
    ) in warning.msg
    assert "catcher" not in warning.msg
    assert "turn DEBUG off" in warning.hint


@pytest.mark.parametrize("debug", [True, False])
def test_debug_with_local_mailers_only_or_debug_off_is_fine(settings, debug) -> None:
    settings.DEBUG = debug
    if debug:
        only(settings, catcher=smtp(host="localhost", port=1025, use_tls=False))
    else:
        only(settings, relay=smtp())

    assert check_debug_with_real_mailers() == []


# --- through manage.py check -------------------------------------------------------


def test_manage_py_check_reports_errors_with_their_hints(settings) -> None:
    only(settings, relay=smtp(use_tls=True, use_ssl=True, timeout=None))

    with pytest.raises(SystemCheckError) as raised:
        call_command("check", stdout=StringIO(), stderr=StringIO())

    report = str(raised.value)
    assert "(mailops.E004) Mailer 'relay' turns on both STARTTLS" in report
    assert "HINT: Set only one" in report
    assert "(mailops.W005)" in report


def test_manage_py_check_prints_warnings_and_passes(settings) -> None:
    only(settings, relay=smtp(host="smtp.sendgrid.com", port=587))
    err = StringIO()

    call_command("check", stdout=StringIO(), stderr=err)

    assert "(mailops.W001) Mailer 'relay': host 'smtp.sendgrid.com'" in err.getvalue()
    assert "did you mean 'smtp.sendgrid.net'?" in err.getvalue()


def test_manage_py_check_is_quiet_for_a_correct_configuration(settings) -> None:
    only(settings, gmail=gmail())
    settings.MAILOPS = {"FROM_EMAILS": {"gmail": "me@gmail.com"}}
    out, err = StringIO(), StringIO()

    call_command("check", "--tag", "mailops", "--fail-level", "WARNING", stdout=out, stderr=err)

    assert "System check identified no issues" in out.getvalue()
    assert err.getvalue() == ""


def test_checks_can_be_silenced(settings) -> None:
    only(settings, relay=smtp(host="smtp.google.com"))
    settings.SILENCED_SYSTEM_CHECKS = ["mailops.W001"]
    out = StringIO()

    call_command("check", "--fail-level", "WARNING", stdout=out, stderr=StringIO())

    assert "no issues (1 silenced)" in out.getvalue()


# --- check --deploy for a production-like environment --------------------------------

PRODUCTION_ENV = {
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "mail.example.com",
    "MAILER_URL": "smtp+tls://ops%40example.com:relay-password@smtp.example.com?timeout=20",
    "DEFAULT_FROM_EMAIL": "ops@example.com",
    "SECURE_SSL_REDIRECT": "1",
    # The tracking webhooks are mounted: without a secret, check --deploy fails (E020).
    "ANYMAIL_WEBHOOK_SECRET": "anymail:" + secrets.token_urlsafe(24),
}


def project_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> None:
    for name in list(os.environ):
        if name.startswith(("MAILER_", "GMAIL_", "SECURE_", "MAILOPS_")) or name in {
            "DEBUG",
            "SESSION_COOKIE_SECURE",
            "CSRF_COOKIE_SECURE",
            "ALLOWED_HOSTS",
            "DEFAULT_FROM_EMAIL",
        }:
            monkeypatch.delenv(name)
    monkeypatch.setenv("MAILOPS_VAR_DIR", str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def project_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> dict:
    """site_config/settings.py evaluated afresh under ``env``."""
    project_environment(monkeypatch, tmp_path, **env)
    return runpy.run_path(str(ROOT / "site_config" / "settings.py"))


# The settings check --deploy looks at (the rest stay the test suite's).
DEPLOY_SETTINGS = (
    "ANYMAIL",
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "MAILERS",
    "MAILOPS",
    "DEFAULT_FROM_EMAIL",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_SSL_REDIRECT",
)


def test_check_deploy_is_clean_for_a_production_like_environment(
    settings, monkeypatch, tmp_path
) -> None:
    production = project_settings(monkeypatch, tmp_path, **PRODUCTION_ENV)
    for name in DEPLOY_SETTINGS:
        setattr(settings, name, production[name])
    assert settings.DEBUG is False
    assert settings.MAILERS["default"]["BACKEND"] == SMTP_BACKEND
    out, err = StringIO(), StringIO()

    call_command("check", "--deploy", "--fail-level", "WARNING", stdout=out, stderr=err)

    assert "System check identified no issues (0 silenced)." in out.getvalue()
    assert err.getvalue() == ""


def test_manage_py_check_deploy_is_clean_in_a_production_like_environment(
    monkeypatch, tmp_path
) -> None:
    project_environment(monkeypatch, tmp_path, **PRODUCTION_ENV)
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "site_config.settings")

    completed = manage(None, "check", "--deploy", "--fail-level", "WARNING")

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "no issues" in completed.stdout
    assert "relay-password" not in completed.stdout + completed.stderr


def test_production_defaults_are_secure_when_debug_is_off(monkeypatch, tmp_path) -> None:
    production = project_settings(monkeypatch, tmp_path, SECRET_KEY="x" * 50)

    assert production["SESSION_COOKIE_SECURE"] is True
    assert production["CSRF_COOKIE_SECURE"] is True
    assert production["SECURE_HSTS_SECONDS"] == 31_536_000
    assert production["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    # Left to the environment (or the proxy): see the comment in settings.py.
    assert production["SECURE_SSL_REDIRECT"] is False


def test_local_demo_over_http_gets_no_https_settings(monkeypatch, tmp_path) -> None:
    demo = project_settings(monkeypatch, tmp_path, DEBUG="1")

    assert demo["SESSION_COOKIE_SECURE"] is False
    assert demo["CSRF_COOKIE_SECURE"] is False
    assert demo["SECURE_HSTS_SECONDS"] == 0
    assert demo["SECURE_SSL_REDIRECT"] is False
    assert "SECURE_PROXY_SSL_HEADER" not in demo


def test_https_settings_can_be_set_from_the_environment(monkeypatch, tmp_path) -> None:
    configured = project_settings(
        monkeypatch,
        tmp_path,
        SECRET_KEY="x" * 50,
        SECURE_HSTS_SECONDS="3600",
        SECURE_HSTS_PRELOAD="0",
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO",
    )

    assert configured["SECURE_HSTS_SECONDS"] == 3600
    assert configured["SECURE_HSTS_PRELOAD"] is False
    assert configured["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")


# --- W012: a sender domain that relays refuse ------------------------------------------


@pytest.mark.parametrize(
    ("host", "sender", "signs_in", "warned"),
    [
        ("smtp.example.com", "mailops@localhost", False, True),
        ("smtp.example.com", "Ops <ops@mailhost>", False, True),
        ("smtp.example.com", "ops@example.com", False, False),
        ("127.0.0.1", "mailops@localhost", False, False),  # a local catcher takes anything
        # A local relay's submission port (or a tunnel to a provider) wants a password.
        ("127.0.0.1", "mailops@localhost", True, True),
        ("localhost", "ops@example.com", True, False),
    ],
)
def test_a_real_relay_with_an_unqualified_sender_is_warned_about(
    settings, host: str, sender: str, signs_in: bool, warned: bool
) -> None:
    credentials = {"username": "ops", "password": "relay-pass-4821"} if signs_in else {}
    settings.MAILERS = {"default": smtp(host=host, **credentials)}
    settings.DEFAULT_FROM_EMAIL = sender

    messages = check_mailers()

    assert ("mailops.W012" in ids(messages)) is warned
    if warned:
        warning = find(messages, "mailops.W012")
        assert "reject_non_fqdn_sender" in warning.msg
        assert "DEFAULT_FROM_EMAIL" in warning.hint


def test_the_unqualified_sender_warning_names_the_per_mailer_setting(settings) -> None:
    settings.MAILERS = {"relay": smtp()}
    settings.MAILOPS = {**settings.MAILOPS, "DEFAULT_MAILER": "relay"}
    settings.MAILOPS["FROM_EMAILS"] = {"relay": "root@box"}

    warning = find(check_mailers(), "mailops.W012")

    assert "MAILOPS['FROM_EMAILS']['relay']" in warning.hint
