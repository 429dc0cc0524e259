"""``manage.py maildoctor`` against a real DNS server on loopback (tests.dns_server)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from mailops.mailers.environ import gmail_entry
from tests.dns_server import LoopbackDNSServer, SilentDNSServer

SMTP = "django.core.mail.backends.smtp.EmailBackend"
LOCMEM = "django.core.mail.backends.locmem.EmailBackend"


def relay(host: str) -> dict[str, Any]:
    return {"BACKEND": SMTP, "OPTIONS": {"host": host, "port": 587, "use_tls": True}}


def provider(esp: str) -> dict[str, Any]:
    return {"BACKEND": f"anymail.backends.{esp}.EmailBackend"}


def run_maildoctor(*args: str) -> tuple[int, str, str]:
    """(exit status, stdout, error text) of the command, as a shell would see them."""
    out = StringIO()
    try:
        call_command("maildoctor", *args, stdout=out, stderr=StringIO())
    except CommandError as error:
        return error.returncode, out.getvalue(), str(error)
    return 0, out.getvalue(), ""


def finding_ids(*args: str) -> tuple[int, list[str]]:
    status, out, _ = run_maildoctor(*args, "--json")
    data = json.loads(out)
    return status, [f["id"] for report in data["mailers"] for f in report["findings"]]


@pytest.fixture
def mail_dns(dns_server: LoopbackDNSServer) -> Callable[..., Any]:
    """``with mail_dns(mailers, from_email, selectors=...)``: settings asking the loopback zone."""

    @contextmanager
    def configure(
        mailers: dict[str, Any],
        from_email: str,
        *,
        selectors: dict[str, list[str]] | None = None,
        nameserver: str = dns_server.nameserver,
        from_emails: dict[str, str] | None = None,
    ) -> Iterator[None]:
        mailops = {
            "DEFAULT_MAILER": next(iter(mailers)),
            "FROM_EMAILS": from_emails or {},
            "DNS_NAMESERVERS": [nameserver],
            "DNS_TIMEOUT": 1.0,
            "DKIM_SELECTORS": selectors or {},
        }
        with override_settings(MAILERS=mailers, DEFAULT_FROM_EMAIL=from_email, MAILOPS=mailops):
            yield

    return configure


def test_a_domain_with_everything_right_passes_with_exit_0(mail_dns: Any) -> None:
    with mail_dns(
        {"relay": relay("smtp.good.test")},
        "App <app@good.test>",
        selectors={"relay": ["s2048", "ed", "cname"]},
    ):
        status, out, _ = run_maildoctor()
    assert status == 0
    assert "relay: From app@good.test, domain good.test" in out
    assert "No problems found." in out


def test_two_spf_records_are_an_error_and_exit_1(mail_dns: Any) -> None:
    with mail_dns({"relay": relay("smtp.good.test")}, "app@double.test"):
        status, out, error = run_maildoctor()
    assert status == 1
    assert "ERROR mailops.D021: double.test has 2 SPF records" in out
    assert "hint: Merge them into one v=spf1 record" in out
    assert "1 error in the mail DNS" in error


def test_json_lists_each_finding_with_id_level_message_and_hint(mail_dns: Any) -> None:
    with mail_dns({"relay": relay("smtp.good.test")}, "app@double.test"):
        status, out, _ = run_maildoctor("--json")
    data = json.loads(out)
    assert status == 1
    assert data["errors"] == 1
    assert data["warnings"] == 1  # D043: nothing shown to align for DMARC
    (report,) = data["mailers"]
    assert report["alias"] == "relay"
    assert report["from_email"] == "app@double.test"
    assert report["domain"] == "double.test"
    by_id = {finding["id"]: finding for finding in report["findings"]}
    assert set(by_id) == {"mailops.D021", "mailops.D050", "mailops.D042", "mailops.D043"}
    assert by_id["mailops.D042"]["level"] == "info"
    assert "p=none" in by_id["mailops.D042"]["message"]
    assert by_id["mailops.D042"]["hint"].startswith("Once the reports")


def test_no_spf_and_no_dmarc(mail_dns: Any) -> None:
    with mail_dns({"relay": relay("smtp.good.test")}, "app@bare.test"):
        status, ids = finding_ids()
    assert status == 1
    assert "mailops.D020" in ids
    assert "mailops.D040" in ids


@pytest.mark.parametrize("domain", ["nomx.test", "nullmx.test"])
def test_no_mx_is_a_warning_only(mail_dns: Any, domain: str) -> None:
    with mail_dns({"relay": relay("smtp.good.test")}, f"app@{domain}"):
        status, out, _ = run_maildoctor()
    assert status == 0
    assert f"WARNING mailops.D010: {domain} has no MX record" in out


def test_spf_over_ten_lookups_is_reported(mail_dns: Any) -> None:
    with mail_dns({"relay": relay("smtp.good.test")}, "app@toomany.test"):
        status, out, _ = run_maildoctor()
    assert status == 1
    assert "mailops.D023" in out
    assert "DNS lookups; the limit is 10" in out


def test_an_include_loop_is_a_finding_not_a_traceback(mail_dns: Any) -> None:
    with mail_dns({"relay": relay("smtp.good.test")}, "app@loop.test"):
        status, out, _ = run_maildoctor()
    assert status == 1
    assert "mailops.D024" in out
    assert "loop.test -> loop2.test -> loop.test" in out


def test_garbage_in_spf_and_dmarc_records(mail_dns: Any) -> None:
    with mail_dns({"relay": relay("smtp.good.test")}, "app@garbage.test"):
        status, out, _ = run_maildoctor()
    assert status == 1
    assert "ERROR mailops.D022: The SPF record of garbage.test has a syntax error at" in out
    assert "999.1.1.1" in out
    assert "ERROR mailops.D041: The DMARC record at _dmarc.garbage.test is not valid" in out


def test_txt_bytes_that_are_not_text(mail_dns: Any) -> None:
    with mail_dns({"relay": relay("smtp.good.test")}, "app@binary.test"):
        status, out, _ = run_maildoctor()
    assert status == 1
    assert (
        "mailops.D022: The SPF record of binary.test contains bytes that are not plain text" in out
    )


def test_plus_all_and_an_include_without_spf(mail_dns: Any) -> None:
    with mail_dns({"relay": relay("smtp.good.test")}, "app@everyone.test"):
        _, everyone = finding_ids()
    with mail_dns({"relay": relay("smtp.good.test")}, "app@dangling.test"):
        _, dangling = finding_ids()
    assert "mailops.D027" in everyone
    assert "mailops.D026" in dangling


def test_a_domain_that_does_not_exist(mail_dns: Any) -> None:
    with mail_dns({"relay": relay("smtp.good.test")}, "app@nowhere.test"):
        status, out, _ = run_maildoctor()
    assert status == 1
    assert "ERROR mailops.D003: The domain nowhere.test does not exist in DNS (NXDOMAIN)." in out


def test_a_dns_server_that_never_answers_is_could_not_check_never_a_pass(
    mail_dns: Any, silent_dns_server: SilentDNSServer
) -> None:
    with mail_dns(
        {"relay": relay("smtp.good.test")}, "app@good.test", nameserver=silent_dns_server.nameserver
    ):
        status, out, _ = run_maildoctor()
    assert status == 1
    assert "ERROR mailops.D002: Could not check the DNS of good.test: no answer within 1 s" in out
    assert "No problems found." not in out
    assert silent_dns_server.queries >= 1


def test_a_relay_outside_the_spf_record_is_rejected(mail_dns: Any) -> None:
    with mail_dns({"relay": relay("smtp.elsewhere.test")}, "app@good.test"):
        status, out, _ = run_maildoctor()
    assert status == 1
    assert (
        "mailops.D025: SPF of good.test rejects the relay smtp.elsewhere.test (198.51.100.7)" in out
    )


def test_every_address_of_a_dual_stack_relay_must_pass(mail_dns: Any) -> None:
    with mail_dns({"relay": relay("smtp6.good.test")}, "app@good.test"):
        status, out, _ = run_maildoctor()
    assert status == 1
    assert "mailops.D025: SPF of good.test rejects the relay smtp6.good.test (2001:db8::11)" in out
    assert "192.0.2.11" not in out


def test_a_softfail_for_the_relay_is_a_warning(mail_dns: Any) -> None:
    with mail_dns({"relay": relay("smtp.soft.test")}, "app@soft.test"):
        status, out, _ = run_maildoctor()
    assert "WARNING mailops.D028: SPF of soft.test gives softfail" in out
    assert status == 0


def test_a_relay_on_this_machine_is_not_evaluated(mail_dns: Any) -> None:
    with mail_dns({"relay": relay("127.0.0.1")}, "app@good.test"):
        status, ids = finding_ids()
    assert status == 0
    assert "mailops.D029" in ids


def test_gmail_needs_google_in_spf_and_from_the_signed_in_user(mail_dns: Any) -> None:
    gmail = {"gmail": gmail_entry("me@good.test", "abcd efgh ijkl mnop")}
    with mail_dns(gmail, "me@good.test"):
        assert finding_ids() == (0, ["mailops.D050"])
    with mail_dns(gmail, "someone-else@good.test"):
        status, out, _ = run_maildoctor()
    assert status == 0
    assert "WARNING mailops.D060: Mailer 'gmail' signs in to Gmail as me@good.test" in out
    with mail_dns(gmail, "me@good.test", from_emails={"gmail": "me@soft.test"}):
        status, out, _ = run_maildoctor()
    assert status == 1
    assert "mailops.D025: The SPF record of soft.test does not authorise Gmail" in out
    assert "include:_spf.google.com" in out


def test_providers_are_checked_against_their_documented_include(mail_dns: Any) -> None:
    with mail_dns({"pm": provider("postmark")}, "app@good.test"):
        _, postmark = finding_ids()
    with mail_dns({"ses": provider("amazon_ses")}, "app@good.test"):
        status, out, _ = run_maildoctor()
    with mail_dns({"mj": provider("mailjet")}, "app@good.test"):
        _, mailjet = finding_ids()
    assert "mailops.D030" not in postmark
    assert "WARNING mailops.D030: The SPF record of good.test does not authorise Amazon SES" in out
    assert "include:amazonses.com" in out
    assert status == 0
    assert "mailops.D029" in mailjet


def test_dkim_selectors_from_settings(mail_dns: Any) -> None:
    selectors = {"relay": ["s1024", "revoked", "garbled", "notb64", "missing"]}
    with mail_dns({"relay": relay("smtp.good.test")}, "app@good.test", selectors=selectors):
        status, out, _ = run_maildoctor()
    assert status == 1
    assert "WARNING mailops.D053: DKIM selector 's1024'" in out
    assert (
        "mailops.D052: DKIM selector 'revoked' at revoked._domainkey.good.test: the key is empty"
        in out
    )
    assert "mailops.D052: DKIM selector 'garbled'" in out
    assert "does not hold an RSA public key" in out
    assert "mailops.D052: DKIM selector 'notb64'" in out
    assert "ERROR mailops.D051: DKIM selector 'missing': no key record" in out


def test_without_dkim_or_aligned_spf_dmarc_cannot_pass(mail_dns: Any) -> None:
    with mail_dns({"pm": provider("postmark")}, "app@good.test"):
        _, without = finding_ids()
    with mail_dns({"pm": provider("postmark")}, "app@good.test", selectors={"pm": ["s2048"]}):
        _, with_dkim = finding_ids()
    assert "mailops.D043" in without
    assert "mailops.D043" not in with_dkim


def test_a_subdomain_uses_its_parents_dmarc_policy(mail_dns: Any) -> None:
    with mail_dns({"relay": relay("smtp.good.test")}, "app@sub.org.test"):
        assert finding_ids() == (0, ["mailops.D050"])


def test_domain_option_checks_another_domain(mail_dns: Any) -> None:
    with mail_dns({"relay": relay("smtp.good.test")}, "app@good.test"):
        status, ids = finding_ids("--domain", "double.test")
    assert status == 1
    assert "mailops.D021" in ids


def test_all_mailers_checks_those_that_deliver_real_mail(mail_dns: Any) -> None:
    mailers = {"console": {"BACKEND": LOCMEM}, "a": relay("smtp.good.test"), "b": relay("x.test")}
    with mail_dns(mailers, "app@good.test", from_emails={"b": "app@double.test"}):
        status, out, _ = run_maildoctor("--all-mailers", "--json")
    data = json.loads(out)
    assert [report["alias"] for report in data["mailers"]] == ["a", "b"]
    assert status == 1


def test_a_local_mailer_named_with_using_gets_its_domain_checked(mail_dns: Any) -> None:
    with mail_dns({"default": {"BACKEND": LOCMEM}}, "app@bare.test"):
        status, ids = finding_ids("--using", "default")
    assert ids[0] == "mailops.D004"
    assert "mailops.D020" in ids
    assert status == 1


def test_a_from_address_without_domain(mail_dns: Any) -> None:
    with mail_dns({"relay": relay("smtp.good.test")}, "mailops@localhost"):
        status, out, _ = run_maildoctor()
    assert status == 1
    assert "ERROR mailops.D001: Mailer 'relay' sends from 'mailops@localhost'" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--using", "nope"), "There is no mailer 'nope' in MAILERS."),
        (("--domain", "not a domain"), "--domain 'not a domain' is not a domain name."),
    ],
)
def test_bad_usage_exits_2(mail_dns: Any, args: tuple[str, ...], message: str) -> None:
    with mail_dns({"relay": relay("smtp.good.test")}, "app@good.test"):
        status, _, error = run_maildoctor(*args)
    assert (status, error) == (2, message)


def test_all_mailers_when_none_delivers_real_mail_exits_2(mail_dns: Any) -> None:
    with mail_dns({"default": {"BACKEND": LOCMEM}}, "app@good.test"):
        status, _, error = run_maildoctor("--all-mailers")
    assert status == 2
    assert "No mailer delivers real mail" in error


def test_bad_nameservers_in_settings_exit_2(mail_dns: Any) -> None:
    with mail_dns({"relay": relay("smtp.good.test")}, "app@good.test", nameserver="dns.example"):
        status, _, error = run_maildoctor()
    assert status == 2
    assert "MAILOPS['DNS_NAMESERVERS'] is not valid" in error
