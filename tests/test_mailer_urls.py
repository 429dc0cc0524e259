"""MAILERS come from the environment: every scheme, the Gmail preset, and clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailops.mailers.environ import (
    CONSOLE_BACKEND,
    OUTBOX_BACKEND,
    SMTP_BACKEND,
    MailerURLError,
    mailers_from_environ,
    parse_mailer_url,
)
from tests.worker_processes import manage


def parse(url: str) -> dict:
    return parse_mailer_url(url, variable="MAILER_URL")[0]


def test_nothing_set_gives_console_default_and_eml_outbox(tmp_path: Path) -> None:
    env = mailers_from_environ({}, outbox_dir=tmp_path / "outbox")
    assert env.mailers == {
        "default": {"BACKEND": CONSOLE_BACKEND},
        "outbox": {"BACKEND": OUTBOX_BACKEND, "OPTIONS": {"file_path": str(tmp_path / "outbox")}},
    }


def test_smtp_tls_url_defaults_port_through_django_and_decodes_credentials() -> None:
    entry = parse("smtp+tls://me%40example.com:p%40ss%20word@smtp.example.com?timeout=7")
    assert entry == {
        "BACKEND": SMTP_BACKEND,
        "OPTIONS": {
            "host": "smtp.example.com",
            "use_tls": True,
            "use_ssl": False,
            "username": "me@example.com",
            "password": "p@ss word",
            "timeout": 7.0,
        },
    }


@pytest.mark.parametrize(
    ("url", "use_tls", "use_ssl", "port"),
    [
        ("smtp://relay.local:2525", False, False, 2525),
        ("smtp+tls://relay.local", True, False, None),
        ("smtps://relay.local", False, True, None),
        ("SMTPS://relay.local:1465", False, True, 1465),
    ],
)
def test_smtp_schemes_choose_tls_mode(
    url: str, use_tls: bool, use_ssl: bool, port: int | None
) -> None:
    options = parse(url)["OPTIONS"]
    assert (options["use_tls"], options["use_ssl"], options.get("port")) == (
        use_tls,
        use_ssl,
        port,
    )


def test_django_defaults_the_port_from_the_tls_mode(settings) -> None:
    from django.core.mail import mailers

    settings.MAILERS = {
        "tls": parse("smtp+tls://relay.local"),
        "ssl": parse("smtps://relay.local"),
        "plain": parse("smtp://relay.local"),
    }
    assert [mailers[a].port for a in ("tls", "ssl", "plain")] == [587, 465, 25]


def test_from_parameter_sets_the_sender_per_alias(tmp_path: Path) -> None:
    env = mailers_from_environ(
        {"MAILER_BACKUP_URL": "smtp://relay.local?from=ops%40example.com"},
        outbox_dir=tmp_path,
    )
    assert env.from_emails == {"backup": "ops@example.com"}
    assert "from" not in env.mailers["backup"]["OPTIONS"]


def test_alias_variables_are_lower_cased_and_default_replaced(tmp_path: Path) -> None:
    env = mailers_from_environ(
        {
            "MAILER_URL": "locmem://",
            "MAILER_BACKUP_URL": "console://",
            "MAILER_EU_RELAY_URL": "file:///srv/mail",
            "MAILER_EMPTY_URL": "",
        },
        outbox_dir=tmp_path,
    )
    assert sorted(env.mailers) == ["backup", "default", "eu_relay"]
    assert env.mailers["eu_relay"]["OPTIONS"] == {"file_path": "/srv/mail"}


def test_anymail_url_query_becomes_options() -> None:
    entry = parse("anymail+postmark://?server_token=abc123&timeout=4")
    assert entry == {
        "BACKEND": "anymail.backends.postmark.EmailBackend",
        "OPTIONS": {"server_token": "abc123", "timeout": 4.0},
    }


def test_gmail_preset_strips_spaces_from_the_app_password(tmp_path: Path) -> None:
    env = mailers_from_environ(
        {"GMAIL_USER": "me@gmail.com", "GMAIL_APP_PASSWORD": "abcd efgh ijkl mnop"},
        outbox_dir=tmp_path,
    )
    options = env.mailers["gmail"]["OPTIONS"]
    assert options["host"] == "smtp.gmail.com"
    assert (options["port"], options["use_tls"], options["use_ssl"]) == (587, True, False)
    assert options["password"] == "abcdefghijklmnop"
    assert env.mailers["default"]["BACKEND"] == CONSOLE_BACKEND


def test_gmail_preset_stays_under_gmails_daily_limit_unless_told_otherwise(
    tmp_path: Path,
) -> None:
    gmail = {"GMAIL_USER": "me@gmail.com", "GMAIL_APP_PASSWORD": "abcd efgh ijkl mnop"}
    assert mailers_from_environ(gmail, outbox_dir=tmp_path).throttle == {
        "gmail": {"daily_quota": 500}
    }
    workspace = mailers_from_environ({**gmail, "GMAIL_DAILY_QUOTA": "2000"}, outbox_dir=tmp_path)
    assert workspace.throttle == {"gmail": {"daily_quota": 2000}}
    unlimited = mailers_from_environ({**gmail, "GMAIL_DAILY_QUOTA": "0"}, outbox_dir=tmp_path)
    assert unlimited.throttle == {}
    with pytest.raises(MailerURLError, match=r"GMAIL_DAILY_QUOTA: .* is not a whole number"):
        mailers_from_environ({**gmail, "GMAIL_DAILY_QUOTA": "lots"}, outbox_dir=tmp_path)


def test_rate_and_daily_quota_on_any_mailer_url_become_its_throttle(tmp_path: Path) -> None:
    env = mailers_from_environ(
        {
            "MAILER_URL": "smtp+tls://me:hunter22@relay.example.com?timeout=5&rate=2.5",
            "MAILER_API_URL": "anymail+postmark://?server_token=t0k&daily_quota=10000",
        },
        outbox_dir=tmp_path,
    )
    assert env.throttle == {"default": {"rate": 2.5}, "api": {"daily_quota": 10000}}
    # The limits are mailops' own: the backends never see them as options.
    assert env.mailers["default"]["OPTIONS"]["timeout"] == 5.0
    assert "rate" not in env.mailers["default"]["OPTIONS"]
    assert env.mailers["api"]["OPTIONS"] == {"server_token": "t0k"}


@pytest.mark.parametrize(
    ("query", "message"),
    [("rate=fast", "rate= is not a number"), ("daily_quota=-5", "greater than zero")],
)
def test_bad_throttle_values_name_the_variable(tmp_path: Path, query: str, message: str) -> None:
    with pytest.raises(MailerURLError) as caught:
        mailers_from_environ(
            {"MAILER_URL": f"smtp://me:hunter22@relay.example.com?{query}"}, outbox_dir=tmp_path
        )
    assert str(caught.value).startswith("MAILER_URL: ")
    assert message in str(caught.value)
    assert "hunter22" not in str(caught.value)


def test_gmail_preset_needs_both_variables(tmp_path: Path) -> None:
    with pytest.raises(MailerURLError, match="GMAIL_APP_PASSWORD"):
        mailers_from_environ({"GMAIL_USER": "me@gmail.com"}, outbox_dir=tmp_path)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://user:hunter22@host", "unknown scheme 'ftp'"),
        ("smtp://user:hunter22@host:notaport", "not a valid URL"),
        ("smtp+tls://user:hunter22@", "needs a host"),
        ("smtp://user:hunter22@host?tls=yes", "unknown query parameter"),
        ("smtp://user:hunter22@host?timeout=soon", "timeout= is not a number"),
        ("anymail+pigeon://?api_key=hunter22", "unknown anymail provider 'pigeon'"),
        ("file://relative/dir", "absolute path"),
        ("hunter22", "unknown scheme"),
    ],
)
def test_bad_urls_name_the_variable_and_never_echo_the_password(url: str, message: str) -> None:
    with pytest.raises(MailerURLError) as caught:
        parse_mailer_url(url, variable="MAILER_BACKUP_URL")
    text = str(caught.value)
    assert text.startswith("MAILER_BACKUP_URL: ")
    assert message in text
    assert "hunter22" not in text


def test_a_bad_url_stops_start_up_with_a_clear_message() -> None:
    env = {
        **os.environ,
        "DEBUG": "1",
        "MAILER_URL": "smtp://me:hunter22@host:99999",
        "DJANGO_SETTINGS_MODULE": "site_config.settings",
    }
    result = manage(env, "check")
    assert result.returncode == 2
    assert (
        result.stderr
        == "Configuration error: MAILER_URL: is not a valid URL (check the port number)\n"
    )
    assert "hunter22" not in result.stderr + result.stdout
