"""DNS lookups for the doctor: dnspython with short lifetimes and honest failures.

Every lookup either answers (possibly with nothing), says the name does not
exist, or raises :class:`DNSUnavailable`: a timeout or a broken server is
"could not check", never an empty answer that would read as a pass.
"""

from __future__ import annotations

from typing import Any

import dns.exception
import dns.name
import dns.nameserver
import dns.resolver
from django.utils.translation import gettext as _

from mailops.conf import get_setting
from mailops.deliverability.nameservers import parse_nameservers


class DNSUnavailable(Exception):
    """The question could not be answered (timeout, SERVFAIL, refused, no server)."""


class NoSuchDomain(Exception):
    """NXDOMAIN: the name does not exist at all."""


class DomainResolver:
    """A few typed lookups over one ``dns.resolver.Resolver``; counts the queries it sends."""

    def __init__(self, resolver: dns.resolver.Resolver) -> None:
        self.resolver = resolver
        self.queries = 0

    def txt(self, name: str) -> list[str]:
        """The TXT strings of ``name`` (parts joined); ``[]`` when none or NXDOMAIN."""
        try:
            answer = self._resolve(name, "TXT")
        except NoSuchDomain:
            return []
        return [b"".join(rdata.strings).decode("utf-8", errors="replace") for rdata in answer]

    def mx(self, name: str) -> list[str]:
        """MX hosts of ``name``, best first; raises :class:`NoSuchDomain` on NXDOMAIN."""
        answer = self._resolve(name, "MX")
        records = sorted(answer, key=lambda rdata: rdata.preference)
        # A "null MX" (RFC 7505: MX 0 .) says the domain accepts no mail: same as none.
        return [
            rdata.exchange.to_text(omit_final_dot=True)
            for rdata in records
            if rdata.exchange != dns.name.root
        ]

    def addresses(self, name: str) -> list[str]:
        """A and AAAA addresses of ``name``; ``[]`` when none or NXDOMAIN."""
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                found += [rdata.address for rdata in self._resolve(name, rdtype)]
            except NoSuchDomain:
                return found
        return found

    def records(self, name: str, rdtype: str) -> list[Any]:
        """The raw answer (dnspython rdata) for ``name``/``rdtype``; ``[]`` when none or NXDOMAIN.

        An empty list is what RFC 7208 §4.6.4 calls a void lookup.
        """
        try:
            return self._resolve(name, rdtype)
        except NoSuchDomain:
            return []

    def _resolve(self, name: str, rdtype: str) -> list[Any]:
        self.queries += 1
        try:
            answer = self.resolver.resolve(
                dns.name.from_text(name), rdtype, search=False, raise_on_no_answer=False
            )
        except dns.resolver.NXDOMAIN:
            raise NoSuchDomain(name) from None
        except dns.exception.Timeout:
            raise DNSUnavailable(
                _("no answer within %(seconds)g s") % {"seconds": self.resolver.lifetime}
            ) from None
        except dns.resolver.NoNameservers:
            # Every server failed: SERVFAIL, REFUSED or unreachable.
            raise DNSUnavailable(
                _("the DNS server failed to answer (SERVFAIL or refused)")
            ) from None
        except (dns.name.EmptyLabel, dns.name.LabelTooLong, dns.name.NameTooLong) as error:
            raise NoSuchDomain(f"{name}: {error}") from None
        except dns.exception.DNSException as error:
            raise DNSUnavailable(
                _("DNS error: %(error)s") % {"error": error.__class__.__name__}
            ) from None
        return list(answer)


def build_resolver() -> DomainResolver:
    """A resolver for ``MAILOPS["DNS_NAMESERVERS"]`` (else the system's) and ``DNS_TIMEOUT``."""
    configured = get_setting("DNS_NAMESERVERS")
    servers = parse_nameservers(configured) if configured else []
    if servers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(ip, port) for ip, port in servers]
    else:
        try:
            resolver = dns.resolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            raise DNSUnavailable(
                _("no DNS server configured on this machine; set MAILOPS_DNS_NAMESERVERS")
            ) from None
    timeout = float(get_setting("DNS_TIMEOUT"))
    # lifetime bounds one question over all servers and retries; timeout one try.
    resolver.lifetime = timeout
    resolver.timeout = timeout
    # The doctor asks fresh each time: a fix made a minute ago must show.
    resolver.cache = None
    return DomainResolver(resolver)
