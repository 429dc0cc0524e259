"""Does the From domain's SPF let a given relay send? Evaluated by pyspf over our resolver.

pyspf (the maintained RFC 7208 evaluator, module ``spf``) looks names up
through its module-level ``DNSLookup`` function, which uses dnspython's
global resolver (and its deprecated ``query()``). We install a function that
asks the doctor's own resolver while :func:`evaluate_spf` runs (a context
variable says which; threads do not share it) and defers to pyspf's own
lookup otherwise, so other users of pyspf in the process are unaffected.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.resolver
import spf as pyspf

from mailops.deliverability.resolver import DomainResolver

_current: ContextVar[DomainResolver | None] = ContextVar("mailops_spf_resolver", default=None)
_install_lock = threading.Lock()
_installed = False


@dataclass(frozen=True)
class SpfVerdict:
    address: str
    # pass, fail, softfail, neutral, none, permerror, temperror (RFC 7208 §2.6).
    result: str
    explanation: str


def evaluate_spf(*, address: str, sender: str, helo: str, resolver: DomainResolver) -> SpfVerdict:
    """RFC 7208 ``check_host()`` for a message from ``address`` with envelope ``sender``."""
    _install()
    token = _current.set(resolver)
    try:
        query = pyspf.query(i=address, s=sender, h=helo, strict=True)
        result, _code, explanation = query.check()
    finally:
        _current.reset(token)
    return SpfVerdict(address, str(result), str(explanation))


def _install() -> None:
    global _installed
    with _install_lock:
        if not _installed:
            original = pyspf.DNSLookup

            def lookup(name: str, qtype: str, strict: Any = True, timeout: Any = None) -> Any:
                resolver = _current.get()
                if resolver is None:
                    return original(name, qtype, strict, timeout)
                return _lookup(resolver, name, qtype)

            pyspf.DNSLookup = lookup
            _installed = True


def _lookup(resolver: DomainResolver, name: str, qtype: str) -> list[tuple[Any, Any]]:
    """What pyspf's own dnspython lookup returns, asked of ``resolver``."""
    resolver.queries += 1
    try:
        answer = resolver.resolver.resolve(name, qtype, search=False, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return []
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as error:
        raise pyspf.TempError(f"DNS {error.__class__.__name__}") from None
    except dns.exception.DNSException as error:
        raise pyspf.TempError(f"DNS {error.__class__.__name__}") from None
    found: list[tuple[Any, Any]] = []
    for rdata in answer:
        key = (name, qtype)
        if qtype in ("A", "AAAA"):
            found.append((key, rdata.address))
        elif qtype == "MX":
            found.append((key, (rdata.preference, rdata.exchange)))
        elif qtype == "PTR":
            found.append((key, rdata.target.to_text(True)))
        elif qtype in ("TXT", "SPF"):
            found.append((key, rdata.strings))
    return found
