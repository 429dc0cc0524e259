"""``maildoctor --domain`` takes domain names only: refused before any DNS query, exit 2."""

from __future__ import annotations

import json
import os
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from mailops.deliverability.doctor import normalize_domain
from tests.dns_server import LoopbackDNSServer, SilentDNSServer
from tests.worker_processes import manage

RELAY = {
    "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    "OPTIONS": {"host": "smtp.good.test", "port": 587, "use_tls": True},
}

HOSTILE = [
    ("<script>alert(1)</script>.test", "'<script>alert(1)</script>.test'"),
    ("$(id).test", "'$(id).test'"),
    ("`id`.test", "'`id`.test'"),
    ('"quoted".test', "'\"quoted\".test'"),
    ("it's.test", '"it\'s.test"'),
    ("\x1b[31mred\x1b[0m.test", "'\\x1b[31mred\\x1b[0m.test'"),
    ("evil\u202etset.test", "'evil\\u202etset.test'"),
    ("two words.test", "'two words.test'"),
    ("tab\there.test", "'tab\\there.test'"),
    ("line\nbreak.test", "'line\\nbreak.test'"),
    ("_dmarc.good.test", "'_dmarc.good.test'"),
    ("good..test", "'good..test'"),
    ("-good.test", "'-good.test'"),
    ("localhost", "'localhost'"),
    ("192.0.2.1", "'192.0.2.1'"),
    ("", "''"),
]


def run(nameserver: str, *args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    mailops = {"DEFAULT_MAILER": "relay", "DNS_NAMESERVERS": [nameserver], "DNS_TIMEOUT": 1.0}
    with override_settings(
        MAILERS={"relay": RELAY}, DEFAULT_FROM_EMAIL="app@good.test", MAILOPS=mailops
    ):
        try:
            call_command("maildoctor", *args, stdout=out, stderr=err)
        except CommandError as error:
            return error.returncode, out.getvalue(), str(error)
    return 0, out.getvalue(), ""


@pytest.mark.parametrize(("domain", "shown"), HOSTILE)
def test_a_hostile_domain_is_refused_with_exit_2_before_any_dns_query(
    silent_dns_server: SilentDNSServer, domain: str, shown: str
) -> None:
    status, out, error = run(silent_dns_server.nameserver, f"--domain={domain}")
    assert (status, error) == (2, f"--domain {shown} is not a domain name.")
    assert out == ""
    # A query would have reached the silent server (and timed out).
    assert silent_dns_server.queries == 0


@pytest.mark.parametrize(("domain", "_shown"), HOSTILE)
def test_no_control_character_reaches_the_terminal(
    silent_dns_server: SilentDNSServer, domain: str, _shown: str
) -> None:
    _status, out, error = run(silent_dns_server.nameserver, f"--domain={domain}")
    assert all(char.isprintable() for char in out + error)


def test_a_very_long_value_is_cut_in_the_message(silent_dns_server: SilentDNSServer) -> None:
    status, _out, error = run(silent_dns_server.nameserver, "--domain", "a" * 5000 + ".test")
    assert status == 2
    assert error == f"--domain {'a' * 80!r}… is not a domain name."


def test_an_international_domain_is_checked_in_its_ascii_form(
    dns_server: LoopbackDNSServer,
) -> None:
    status, out, _error = run(dns_server.nameserver, "--domain", "Bücher.test", "--json")
    (report,) = json.loads(out)["mailers"]
    assert report["domain"] == "xn--bcher-kva.test"
    assert [finding["id"] for finding in report["findings"]] == ["mailops.D003"]
    assert status == 1


def test_case_and_a_trailing_dot_are_accepted(dns_server: LoopbackDNSServer) -> None:
    status, out, _error = run(dns_server.nameserver, "--domain", "GOOD.Test.")
    assert "domain good.test" in out
    assert status == 0


def test_dns_data_with_control_characters_is_escaped_in_the_text_report(
    dns_server: LoopbackDNSServer,
) -> None:
    # garbage.test's records hold bytes that are not text; nothing of them reaches
    # the terminal raw.
    _status, out, _error = run(dns_server.nameserver, "--domain", "garbage.test")
    assert "mailops.D022" in out
    assert all(char.isprintable() or char == "\n" for char in out)


@pytest.mark.parametrize(
    ("domain", "normalized"),
    [
        ("example.com", "example.com"),
        ("Mail.Example.CO.UK", "mail.example.co.uk"),
        ("mail.пример.рф", "mail.xn--e1afmkfd.xn--p1ai"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("a-b.example.", "a-b.example"),
        ("1password.com", "1password.com"),
    ],
)
def test_normalize_domain_accepts_host_names(domain: str, normalized: str) -> None:
    assert normalize_domain(domain) == normalized


@pytest.mark.parametrize("domain", [domain for domain, _ in HOSTILE])
def test_normalize_domain_refuses_what_is_not_a_host_name(domain: str) -> None:
    assert normalize_domain(domain) is None


def test_from_the_shell_the_exit_status_is_2_and_stderr_holds_no_escape_byte(
    silent_dns_server: SilentDNSServer,
) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "site_config.settings",
        "MAILOPS_DNS_NAMESERVERS": silent_dns_server.nameserver,
    }
    result = manage(env, "maildoctor", "--domain", "\x1b]0;owned\x07$(id).test")
    assert result.returncode == 2
    assert result.stderr == (
        "CommandError: --domain '\\x1b]0;owned\\x07$(id).test' is not a domain name.\n"
    )
    assert "\x1b" not in result.stdout + result.stderr
    assert silent_dns_server.queries == 0
