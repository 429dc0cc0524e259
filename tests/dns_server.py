"""A real authoritative DNS server on loopback (dnslib), and one that never answers.

``LoopbackDNSServer`` serves the records a test gives it over UDP and TCP on
127.0.0.1; names it does not know get NXDOMAIN, known names without the asked
type an empty answer, like a real zone. ``SilentDNSServer`` reads queries and
never replies, for the timeout path. ``dns_server`` serves :func:`doctor_zone`,
the domains the deliverability doctor's tests ask about.
"""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from dnslib import AAAA, CNAME, MX, QTYPE, RCODE, RR, TXT, A, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

_QUIET = DNSLogger(log="-recv,-send,-request,-reply,-truncated,-error,-data", prefix=False)


class Zone:
    """Records by lower-case name; what the server answers from."""

    def __init__(self) -> None:
        self.records: dict[str, list[RR]] = {}

    def add(self, name: str, rtype: str, rdata: Any) -> Zone:
        name = name.lower().rstrip(".")
        self.records.setdefault(name, []).append(
            RR(name + ".", getattr(QTYPE, rtype), rdata=rdata, ttl=60)
        )
        return self

    def txt(self, name: str, *texts: str | bytes) -> Zone:
        """One TXT record per text; long texts are split in 255-byte strings like real zones."""
        for text in texts:
            data = text.encode() if isinstance(text, str) else text
            chunks = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
            self.add(name, "TXT", TXT(chunks))
        return self

    def a(self, name: str, *addresses: str) -> Zone:
        for address in addresses:
            self.add(
                name, "AAAA" if ":" in address else "A", (AAAA if ":" in address else A)(address)
            )
        return self

    def mx(self, name: str, host: str, preference: int = 10) -> Zone:
        return self.add(name, "MX", MX(host, preference))

    def cname(self, name: str, target: str) -> Zone:
        return self.add(name, "CNAME", CNAME(target))

    def exists(self, name: str) -> bool:
        # A name with records, or an empty non-terminal above one, exists.
        return any(known == name or known.endswith("." + name) for known in self.records)


class _ZoneResolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, zone: Zone) -> None:
        self.zone = zone

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        reply.header.aa = 1
        name = str(request.q.qname).lower().rstrip(".")
        qtype = QTYPE[request.q.qtype]
        for _ in range(8):  # follow CNAMEs, as an authoritative server for all of them would
            records = self.zone.records.get(name, [])
            cnames = [rr for rr in records if QTYPE[rr.rtype] == "CNAME"]
            if cnames and qtype != "CNAME":
                reply.add_answer(cnames[0])
                name = str(cnames[0].rdata.label).lower().rstrip(".")
                continue
            for rr in records:
                if QTYPE[rr.rtype] == qtype:
                    reply.add_answer(rr)
            break
        if not reply.rr and not self.zone.exists(name):
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


class LoopbackDNSServer:
    """Serves ``zone`` on 127.0.0.1 (UDP and TCP on one port) until :meth:`stop`."""

    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        resolver = _ZoneResolver(zone)
        for _ in range(5):
            self._udp = DNSServer(resolver, address="127.0.0.1", port=0, logger=_QUIET)
            self.port: int = self._udp.server.server_address[1]
            try:
                self._tcp = DNSServer(
                    resolver, address="127.0.0.1", port=self.port, tcp=True, logger=_QUIET
                )
            except OSError:  # the TCP port was taken: try another pair
                self._udp.server.server_close()
                continue
            break
        else:  # pragma: no cover - five busy ports in a row
            raise RuntimeError("no free port pair for the DNS server")
        self._udp.start_thread()
        self._tcp.start_thread()

    @property
    def nameserver(self) -> str:
        """The ``ip:port`` to put in ``MAILOPS["DNS_NAMESERVERS"]``."""
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        for server in (self._udp, self._tcp):
            server.stop()
            server.server.server_close()


class SilentDNSServer:
    """A UDP socket on 127.0.0.1 that reads every query and never answers."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.port: int = self._socket.getsockname()[1]
        self.queries = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._swallow, daemon=True)
        self._thread.start()

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _swallow(self) -> None:
        while not self._stopping.is_set():
            try:
                self._socket.recvfrom(4096)
            except TimeoutError:
                continue
            self.queries += 1

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
        self._socket.close()


def dkim_rsa_key(bits: int) -> str:
    """A fresh RSA public key as a DKIM ``p=`` value (base64 SubjectPublicKeyInfo DER)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def dkim_ed25519_key() -> str:
    raw = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return base64.b64encode(raw).decode()


def doctor_zone() -> Zone:
    """The domains of the doctor's tests (``.test`` is reserved: RFC 6761)."""
    zone = Zone()
    # Provider includes, served here so that walks end on loopback.
    zone.txt("_spf.google.com", "v=spf1 ip4:209.85.128.0/17 ~all")
    zone.txt("spf.mtasv.net", "v=spf1 ip4:50.31.156.0/23 -all")
    zone.txt("amazonses.com", "v=spf1 ip4:199.255.192.0/22 -all")
    # good.test: everything right; the relay smtp.good.test is in its SPF.
    zone.mx("good.test", "mx.good.test").a("mx.good.test", "192.0.2.25")
    zone.a("smtp.good.test", "192.0.2.10")
    # A dual-stack relay whose IPv6 address the SPF record of good.test leaves out.
    zone.a("smtp6.good.test", "192.0.2.11", "2001:db8::11")
    zone.txt(
        "good.test",
        "google-site-verification=abc",
        "v=spf1 ip4:192.0.2.0/24 include:_spf.google.com include:spf.mtasv.net -all",
    )
    zone.txt("_dmarc.good.test", "v=DMARC1; p=reject; rua=mailto:dmarc@good.test")
    zone.txt("s2048._domainkey.good.test", f"v=DKIM1; k=rsa; p={dkim_rsa_key(2048)}")
    zone.txt("ed._domainkey.good.test", f"v=DKIM1; k=ed25519; p={dkim_ed25519_key()}")
    zone.txt("s1024._domainkey.good.test", f"v=DKIM1; k=rsa; p={dkim_rsa_key(1024)}")
    zone.txt("revoked._domainkey.good.test", "v=DKIM1; k=rsa; p=")
    zone.txt("garbled._domainkey.good.test", "v=DKIM1; k=rsa; p=bm90IGEga2V5")
    zone.txt("notb64._domainkey.good.test", "v=DKIM1; p=!!!not-base64!!!")
    zone.cname("cname._domainkey.good.test", "s2048._domainkey.good.test")
    # A relay the SPF of good.test does not cover.
    zone.a("smtp.elsewhere.test", "198.51.100.7")
    zone.a("smtp.soft.test", "203.0.113.9")
    zone.txt("soft.test", "v=spf1 ip4:192.0.2.0/24 ~all").mx("soft.test", "mx.good.test")
    # double.test: two SPF records (permanent error), p=none DMARC.
    zone.mx("double.test", "mx.good.test")
    zone.txt("double.test", "v=spf1 ip4:192.0.2.0/24 -all", "v=spf1 include:_spf.google.com -all")
    zone.txt("_dmarc.double.test", "v=DMARC1; p=none")
    # bare.test: MX only: no SPF, no DMARC.
    zone.mx("bare.test", "mx.good.test")
    # nomx.test: SPF but no MX.
    zone.txt("nomx.test", "v=spf1 ip4:192.0.2.0/24 -all")
    zone.txt("_dmarc.nomx.test", "v=DMARC1; p=quarantine")
    # nullmx.test: a "null MX" (RFC 7505), the domain's way of saying it takes no mail.
    zone.mx("nullmx.test", ".", 0).txt("nullmx.test", "v=spf1 ip4:192.0.2.0/24 -all")
    zone.txt("_dmarc.nullmx.test", "v=DMARC1; p=quarantine")
    # toomany.test: 11 includes, each one lookup.
    zone.mx("toomany.test", "mx.good.test")
    for number in range(11):
        zone.txt(f"inc{number}.toomany.test", f"v=spf1 ip4:10.0.{number}.0/24 -all")
    zone.txt(
        "toomany.test",
        "v=spf1 " + " ".join(f"include:inc{number}.toomany.test" for number in range(11)) + " -all",
    )
    # loop.test includes loop2.test, which includes loop.test.
    zone.mx("loop.test", "mx.good.test")
    zone.txt("loop.test", "v=spf1 include:loop2.test -all")
    zone.txt("loop2.test", "v=spf1 include:loop.test -all")
    # garbage.test: an SPF record with nonsense, and TXT bytes that are not UTF-8.
    zone.mx("garbage.test", "mx.good.test")
    zone.txt("garbage.test", "v=spf1 ip4:999.1.1.1 frobnicate -all", b"\xff\xfe\x00junk")
    zone.txt("_dmarc.garbage.test", "v=DMARC1; p=maybe")
    zone.mx("binary.test", "mx.good.test")
    zone.txt("binary.test", b"v=spf1 ip4:192.0.2.1 \xff\xfe -all")
    # everyone.test: +all; dangling.test includes a domain without SPF.
    zone.mx("everyone.test", "mx.good.test").txt("everyone.test", "v=spf1 +all")
    zone.mx("dangling.test", "mx.good.test")
    zone.txt("dangling.test", "v=spf1 include:nothing-here.test -all")
    # sub.org.test: a subdomain whose DMARC policy is its parent's.
    zone.mx("sub.org.test", "mx.good.test").txt("sub.org.test", "v=spf1 ip4:192.0.2.0/24 -all")
    zone.txt("_dmarc.org.test", "v=DMARC1; p=reject; sp=quarantine")
    _add_public_suffix_domains(zone)
    _add_void_lookup_domains(zone)
    return zone


def _add_public_suffix_domains(zone: Zone) -> None:
    """Senders under multi-label public suffixes (co.uk, com.au) and a plain .com.

    ``_dmarc.co.uk`` and ``_dmarc.com.au`` hold a decoy policy: a doctor that
    took the last two labels for the organisational domain would read it.
    """
    spf = "v=spf1 ip4:192.0.2.0/24 -all"
    zone.txt("_dmarc.co.uk", "v=DMARC1; p=none").txt("_dmarc.com.au", "v=DMARC1; p=none")
    zone.mx("mail.example.co.uk", "mx.good.test").txt("mail.example.co.uk", spf)
    zone.txt("_dmarc.example.co.uk", "v=DMARC1; p=reject; sp=quarantine")
    # A registered domain directly under co.uk without a DMARC record of its own.
    zone.mx("nodmarc.co.uk", "mx.good.test").txt("nodmarc.co.uk", spf)
    zone.mx("news.shop.example.com.au", "mx.good.test").txt("news.shop.example.com.au", spf)
    zone.txt("_dmarc.example.com.au", "v=DMARC1; p=quarantine")
    zone.mx("mail.example.com", "mx.good.test").txt("mail.example.com", spf)
    zone.txt("_dmarc.example.com", "v=DMARC1; p=reject")


def _add_void_lookup_domains(zone: Zone) -> None:
    """SPF records whose a/mx/exists terms find nothing (RFC 7208 §4.6.4 "void lookups")."""
    zone.a("host.voids.test", "192.0.2.30").mx("mailhost.voids.test", "host.voids.test")
    zone.mx("deadmx.voids.test", "noaddress.voids.test")
    zone.txt("noaddress.voids.test", "a name without an address")
    zone.mx("nullmx.voids.test", ".", 0)
    # Two void lookups (gone1, gone2): still within the limit.
    zone.mx("twovoids.test", "mx.good.test")
    zone.txt(
        "twovoids.test",
        "v=spf1 a:host.voids.test mx:mailhost.voids.test mx:nullmx.voids.test "
        "a:gone1.voids.test exists:gone2.voids.test ip4:192.0.2.0/24 -all",
    )
    # Three: a name that does not exist, an MX whose host has no address, and
    # (through an include) an "a" that defaults to a domain without addresses.
    zone.mx("threevoids.test", "mx.good.test")
    zone.txt(
        "threevoids.test",
        "v=spf1 a:gone1.voids.test mx:deadmx.voids.test include:inc.voids.test "
        "ip4:192.0.2.0/24 -all",
    )
    zone.txt("inc.voids.test", "v=spf1 a -all")


@pytest.fixture(scope="session")
def dns_server() -> Iterator[LoopbackDNSServer]:
    """The doctor's zone (:func:`doctor_zone`) on loopback, for the whole session."""
    server = LoopbackDNSServer(doctor_zone())
    yield server
    server.stop()


@pytest.fixture
def silent_dns_server() -> Iterator[SilentDNSServer]:
    """A DNS server that never answers: every question times out."""
    server = SilentDNSServer()
    yield server
    server.stop()
