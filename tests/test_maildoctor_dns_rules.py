"""The doctor's DNS rules: the DMARC organisational domain and the SPF void-lookup limit.

Against the loopback DNS server (tests.dns_server): senders under ``co.uk``
and ``com.au`` (where ``_dmarc.co.uk`` and ``_dmarc.com.au`` hold decoys that
"the last two labels" would read) and SPF records with void lookups.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from mailops.deliverability.dmarc import DmarcPolicy, check_dmarc, organizational_domain
from mailops.deliverability.findings import CATALOGUE, Level, MailerReport
from mailops.deliverability.resolver import DomainResolver, build_resolver
from mailops.deliverability.spf import walk_spf
from tests.dns_server import LoopbackDNSServer

RELAY = {
    "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    "OPTIONS": {"host": "smtp.good.test", "port": 587, "use_tls": True},
}


@contextmanager
def asking(dns_server: LoopbackDNSServer, from_email: str = "app@good.test") -> Iterator[None]:
    """Settings for one SMTP mailer sending from ``from_email``, DNS from the loopback zone."""
    mailops = {
        "DEFAULT_MAILER": "relay",
        "DNS_NAMESERVERS": [dns_server.nameserver],
        "DNS_TIMEOUT": 1.0,
    }
    with override_settings(
        MAILERS={"relay": RELAY}, DEFAULT_FROM_EMAIL=from_email, MAILOPS=mailops
    ):
        yield


def maildoctor(*args: str) -> tuple[int, dict[str, Any]]:
    out = StringIO()
    try:
        call_command("maildoctor", *args, "--json", stdout=out, stderr=StringIO())
    except CommandError as error:
        return error.returncode, json.loads(out.getvalue())
    return 0, json.loads(out.getvalue())


def findings(data: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {finding["id"]: finding for finding in data["mailers"][0]["findings"]}


def resolver_for(dns_server: LoopbackDNSServer) -> DomainResolver:
    with override_settings(MAILOPS={"DNS_NAMESERVERS": [dns_server.nameserver]}):
        return build_resolver()


@pytest.mark.parametrize(
    ("domain", "organizational"),
    [
        ("mail.example.co.uk", "example.co.uk"),
        ("example.co.uk", "example.co.uk"),
        ("a.b.shop.example.com.au", "example.com.au"),
        ("mail.example.com", "example.com"),
        ("example.com", "example.com"),
        ("Mail.Example.COM.", "example.com"),
        # Exception and wildcard rules of the list: city.kobe.jp is registrable.
        ("www.city.kobe.jp", "city.kobe.jp"),
        # The list's private section: every github.io site is its own organisation.
        ("docs.project.github.io", "project.github.io"),
        # IDNA: the list holds both forms.
        ("mail.xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd.xn--p1ai"),
        # Unknown top-level domains are public suffixes themselves ("*" rule).
        ("sub.org.test", "org.test"),
        # A public suffix is its own organisational domain.
        ("co.uk", "co.uk"),
    ],
)
def test_organizational_domain_comes_from_the_public_suffix_list(
    domain: str, organizational: str
) -> None:
    assert organizational_domain(domain) == organizational


@pytest.mark.parametrize(
    ("domain", "found_at", "policy"),
    [
        # Inherited from the organisational domain: its sp= applies.
        ("mail.example.co.uk", "example.co.uk", "quarantine"),
        # No sp=: p= applies to subdomains too.
        ("news.shop.example.com.au", "example.com.au", "quarantine"),
        ("mail.example.com", "example.com", "reject"),
    ],
)
def test_dmarc_policy_is_found_at_the_organizational_domain(
    dns_server: LoopbackDNSServer, domain: str, found_at: str, policy: str
) -> None:
    report = MailerReport("relay", f"app@{domain}", domain)
    found = check_dmarc(
        report, resolver=resolver_for(dns_server), spf_aligned=True, dkim_usable=False
    )
    assert found == DmarcPolicy(found_at=found_at, policy=policy)
    assert report.findings == []


def test_a_sender_at_mail_example_co_uk_passes_the_doctor(dns_server: LoopbackDNSServer) -> None:
    with asking(dns_server, "App <app@mail.example.co.uk>"):
        status, data = maildoctor()
    assert status == 0
    # D050 (no DKIM selector) is the only note; no D040 "no DMARC record".
    assert list(findings(data)) == ["mailops.D050"]


def test_a_domain_directly_under_co_uk_never_reads_co_uks_record(
    dns_server: LoopbackDNSServer,
) -> None:
    with asking(dns_server, "app@nodmarc.co.uk"):
        _status, data = maildoctor()
    missing = findings(data)["mailops.D040"]
    assert missing["message"] == "nodmarc.co.uk has no DMARC record (_dmarc.nodmarc.co.uk)."
    assert "_dmarc.nodmarc.co.uk: v=DMARC1; p=none" in missing["hint"]


def test_no_dmarc_record_names_both_places_asked(dns_server: LoopbackDNSServer) -> None:
    with asking(dns_server, "app@sub.bare.test"):
        report = MailerReport("relay", "app@sub.bare.test", "sub.bare.test")
        check_dmarc(report, resolver=resolver_for(dns_server), spf_aligned=True, dkim_usable=True)
    (finding,) = report.findings
    assert finding.message == (
        "sub.bare.test has no DMARC record (_dmarc.sub.bare.test nor _dmarc.bare.test)."
    )
    assert "at _dmarc.bare.test:" in finding.hint
    assert "covers sub.bare.test" in finding.hint


def test_three_void_lookups_are_a_permanent_error(dns_server: LoopbackDNSServer) -> None:
    with asking(dns_server, "app@threevoids.test"):
        status, data = maildoctor()
    assert status == 1
    found = findings(data)
    assert found["mailops.D031"]["level"] == "error"
    assert found["mailops.D031"]["message"] == (
        "The SPF record of threevoids.test makes 3 DNS lookups that find nothing "
        "(a:gone1.voids.test, mx:deadmx.voids.test (host noaddress.voids.test), "
        "a:inc.voids.test); receivers stop at the third such void lookup with a permanent "
        "error (RFC 7208 section 4.6.4), so SPF fails."
    )
    # The relay's evaluation (pyspf) ends in the same permanent error: said once.
    assert "mailops.D022" not in found


def test_two_void_lookups_are_within_the_limit(dns_server: LoopbackDNSServer) -> None:
    with asking(dns_server, "app@twovoids.test"):
        status, data = maildoctor()
    assert "mailops.D031" not in findings(data)
    assert status == 0


def test_the_walk_counts_only_lookups_that_find_nothing(dns_server: LoopbackDNSServer) -> None:
    resolver = resolver_for(dns_server)
    record = resolver.txt("twovoids.test")[0]
    walk = walk_spf("twovoids.test", record, resolver=resolver)
    # host.voids.test has an address, mailhost's MX host too, a null MX names no host.
    assert walk.void_lookups == ["a:gone1.voids.test", "exists:gone2.voids.test"]
    assert walk.problems == []


def test_macros_are_not_looked_up(dns_server: LoopbackDNSServer) -> None:
    resolver = resolver_for(dns_server)
    record = "v=spf1 exists:%{i}.a.gone.test exists:%{l}.b.gone.test a:%{d}.c.gone.test -all"
    walk = walk_spf("good.test", record, resolver=resolver)
    assert walk.void_lookups == []
    assert resolver.queries == 0


def test_the_new_finding_is_in_the_catalogue() -> None:
    assert CATALOGUE["mailops.D031"][0] == Level.ERROR
