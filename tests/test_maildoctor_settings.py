"""The doctor's settings: MAILOPS_DNS_NAMESERVERS, ?dkim_selector=, and their system checks."""

from __future__ import annotations

import os
import re
import runpy
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from mailops.deliverability.checks import check_doctor_settings
from mailops.deliverability.nameservers import parse_nameservers
from mailops.mailers.environ import MailerURLError, mailers_from_environ
from tests.worker_processes import ROOT, manage


def project_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> dict:
    """site_config/settings.py evaluated afresh under ``env``."""
    for name in list(os.environ):
        if name.startswith(("MAILER_", "GMAIL_", "MAILOPS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MAILOPS_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("DEBUG", "1")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "site_config" / "settings.py"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1", [("127.0.0.1", 53)]),
        ("127.0.0.1:5353, 192.0.2.1", [("127.0.0.1", 5353), ("192.0.2.1", 53)]),
        ("[::1]:5353,::1", [("::1", 5353), ("::1", 53)]),
        (["10.0.0.1:53"], [("10.0.0.1", 53)]),
        ("", []),
    ],
)
def test_nameservers_parse(value: Any, expected: list[tuple[str, int]]) -> None:
    assert parse_nameservers(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("dns.example.com", "'dns.example.com' is not an IP address"),
        ("127.0.0.1:99999", "port '99999' is not a number from 1 to 65535"),
        ("127.0.0.1:x", "port 'x' is not a number"),
        ("[::1]5353", "is not of the form ip, ip:port or [ipv6]:port"),
    ],
)
def test_bad_nameservers_say_which_item_is_wrong(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_nameservers(value)


def test_settings_read_dns_nameservers_and_dkim_selectors_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project = project_settings(
        monkeypatch,
        tmp_path,
        MAILOPS_DNS_NAMESERVERS="127.0.0.1:5353,192.0.2.53",
        MAILER_URL="smtp+tls://relay.example.com?dkim_selector=s1,s2&timeout=5",
    )
    assert project["MAILOPS"]["DNS_NAMESERVERS"] == ["127.0.0.1:5353", "192.0.2.53"]
    assert project["MAILOPS"]["DKIM_SELECTORS"] == {"default": ["s1", "s2"]}
    assert project["MAILERS"]["default"]["OPTIONS"]["timeout"] == 5.0


def test_a_bad_nameserver_variable_stops_start_up_with_its_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(
        ImproperlyConfigured, match=re.escape("MAILOPS_DNS_NAMESERVERS: 'dns.local'")
    ):
        project_settings(monkeypatch, tmp_path, MAILOPS_DNS_NAMESERVERS="dns.local")


def test_manage_py_says_so_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAILER_")}
    env.update(
        DJANGO_SETTINGS_MODULE="site_config.settings",
        DEBUG="1",
        MAILOPS_VAR_DIR=str(tmp_path),
        MAILOPS_DNS_NAMESERVERS="8.8.8.8:dns",
    )
    completed = manage(env, "maildoctor")
    assert completed.returncode == 2
    assert completed.stderr.strip() == (
        "Configuration error: MAILOPS_DNS_NAMESERVERS: '8.8.8.8:dns': port 'dns' is not a "
        "number from 1 to 65535"
    )


@pytest.mark.parametrize(
    "url",
    [
        "smtps://relay.example.com?dkim_selector=mail&dkim_selector=backup",
        "anymail+postmark://?server_token=t&dkim_selector=mail,backup",
        "console://?dkim_selector=mail,backup",
    ],
)
def test_dkim_selector_is_accepted_on_every_kind_of_mailer_url(url: str, tmp_path: Path) -> None:
    env = mailers_from_environ({"MAILER_URL": url}, outbox_dir=tmp_path)

    assert env.dkim_selectors == {"default": ["mail", "backup"]}
    assert "dkim_selector" not in str(env.mailers["default"])


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("dkim_selector=", "dkim_selector= needs a selector name"),
        ("dkim_selector=bad%20name", "dkim_selector='bad name' is not a DNS label"),
    ],
)
def test_a_bad_dkim_selector_names_the_variable(query: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(MailerURLError) as raised:
        mailers_from_environ(
            {"MAILER_BACKUP_URL": f"smtp://relay.example.com?{query}"}, outbox_dir=tmp_path
        )
    assert str(raised.value) == f"MAILER_BACKUP_URL: {message}"


def test_unknown_query_parameters_are_still_refused(tmp_path: Path) -> None:
    with pytest.raises(MailerURLError, match="unknown query parameter"):
        mailers_from_environ(
            {"MAILER_URL": "smtp://relay.example.com?dkim_selector=s1&dkim=s1"},
            outbox_dir=tmp_path,
        )


@pytest.mark.parametrize(
    ("key", "value", "check_id"),
    [
        ("DNS_NAMESERVERS", ["resolver.example"], "mailops.E010"),
        ("DNS_NAMESERVERS", [53], "mailops.E010"),
        ("DKIM_SELECTORS", {"default": "s1"}, "mailops.E011"),
        ("DKIM_SELECTORS", ["s1"], "mailops.E011"),
        ("DNS_TIMEOUT", 0, "mailops.E012"),
        ("DNS_TIMEOUT", "2", "mailops.E012"),
    ],
)
def test_system_checks_report_bad_doctor_settings(
    settings: Any, key: str, value: Any, check_id: str
) -> None:
    settings.MAILOPS = {**settings.MAILOPS, key: value}

    (error,) = check_doctor_settings()

    assert error.id == check_id
    assert error.hint


def test_correct_doctor_settings_pass_the_checks(settings: Any) -> None:
    settings.MAILOPS = {
        **settings.MAILOPS,
        "DNS_NAMESERVERS": ["127.0.0.1:5353", "[::1]"],
        "DKIM_SELECTORS": {"default": ["s1", "google"]},
        "DNS_TIMEOUT": 1.5,
    }
    assert check_doctor_settings() == []


def test_manage_py_check_reports_a_bad_nameserver(settings: Any) -> None:
    settings.MAILOPS = {**settings.MAILOPS, "DNS_NAMESERVERS": "127.0.0.1:53,dns"}

    with pytest.raises(SystemCheckError) as raised:
        call_command("check", stdout=StringIO(), stderr=StringIO())

    assert "(mailops.E010) MAILOPS['DNS_NAMESERVERS'] is not valid: 'dns'" in str(raised.value)
