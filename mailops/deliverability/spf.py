"""Read a domain's SPF policy without evaluating it: records, syntax, includes, lookup count.

Evaluation for a given address (does this relay pass?) is pyspf's job
(:mod:`.spf_relay`); this walk answers what pyspf does not report as a
whole: which domains the policy reaches through ``include:``/``redirect=``,
whether it loops, how many DNS lookups it needs (RFC 7208 §4.6.4: more
than 10 is a permanent error, whichever address is asked about), and how
many of those find nothing ("void lookups": more than 2 is a permanent error).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from mailops.deliverability.resolver import DomainResolver

LOOKUP_LIMIT = 10
# RFC 7208 §4.6.4: lookups answered by NXDOMAIN or by no records, at most 2.
VOID_LOOKUP_LIMIT = 2
# RFC 7208 §4.6.4: an "mx" mechanism looks up the addresses of at most 10 hosts.
MX_HOST_LIMIT = 10
# Mechanisms that cost one DNS lookup each (RFC 7208 §4.6.4); redirect= too.
LOOKUP_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})
MECHANISMS = LOOKUP_MECHANISMS | {"all", "ip4", "ip6"}
# Mechanisms whose lookups can be void whatever the client's address ("ptr"
# asks about the client itself, so it is left to the evaluation).
VOID_CHECKED = frozenset({"a", "mx", "exists"})

_MECHANISM = re.compile(r"^(?P<qualifier>[+\-~?]?)(?P<name>[a-z0-9]+)(?P<rest>[:/].*)?$", re.I)
_MODIFIER = re.compile(r"^(?P<name>[a-z][a-z0-9_.\-]*)=(?P<value>.*)$", re.I)
_DUAL_CIDR = re.compile(r"^(?:/(?P<v4>\d+))?(?://(?P<v6>\d+))?$")
_DOMAIN_SPEC = re.compile(r"^[\x21-\x7e]+$")


def is_spf_record(text: str) -> bool:
    lowered = text.lower()
    return lowered == "v=spf1" or lowered.startswith("v=spf1 ")


def spf_records(texts: list[str]) -> list[str]:
    """The TXT strings that are SPF records (RFC 7208 §4.5)."""
    return [text for text in texts if is_spf_record(text)]


@dataclass
class SpfProblem:
    id: str
    message: str
    hint: str


@dataclass
class SpfWalk:
    """What the walk found below one domain's record."""

    domain: str
    record: str
    lookups: int = 0
    # Every domain whose SPF record the policy reaches (include:/redirect=), lower case.
    reached: set[str] = field(default_factory=set)
    problems: list[SpfProblem] = field(default_factory=list)
    # The top-level record ends in "+all"/"all": anyone may send.
    allows_all: bool = False
    # Stopped following includes once past the limit.
    truncated: bool = False
    # The a/mx/exists lookups that found nothing, as "a:gone.example.com" or
    # "mx:example.com (host mx1.example.com)".
    void_lookups: list[str] = field(default_factory=list)

    def reaches(self, domain: str) -> bool:
        return domain.lower().rstrip(".") in self.reached

    def problem(self, finding_id: str, message: str, hint: str) -> None:
        self.problems.append(SpfProblem(finding_id, message, hint))


def walk_spf(domain: str, record: str, *, resolver: DomainResolver) -> SpfWalk:
    """Check ``record`` (``domain``'s only SPF record) and every record it includes.

    Raises :class:`~.resolver.DNSUnavailable` when a lookup on the way times out.
    """
    walk = SpfWalk(domain=domain, record=record)
    _walk_record(walk, domain, record, chain=(domain.lower(),), resolver=resolver, top=True)
    if walk.lookups > LOOKUP_LIMIT:
        values = {"domain": domain, "count": walk.lookups, "limit": LOOKUP_LIMIT}
        if walk.truncated:
            message = _(
                "The SPF record of %(domain)s needs at least %(count)d DNS lookups; the limit "
                "is %(limit)d, so receivers treat it as a permanent error (SPF fails)."
            )
        else:
            message = _(
                "The SPF record of %(domain)s needs %(count)d DNS lookups; the limit is "
                "%(limit)d, so receivers treat it as a permanent error (SPF fails)."
            )
        walk.problem(
            "mailops.D023",
            message % values,
            _(
                "Remove include: entries for services you no longer use, replace a/mx "
                "mechanisms by ip4:/ip6: ranges, or ask the provider for a flatter include."
            ),
        )
    voids = walk.void_lookups
    if len(voids) > VOID_LOOKUP_LIMIT:
        shown = ", ".join(voids[:5]) + (", …" if len(voids) > 5 else "")
        walk.problem(
            "mailops.D031",
            ngettext(
                "The SPF record of %(domain)s makes %(count)d DNS lookup that finds nothing "
                "(%(shown)s); receivers stop at the third such void lookup with a permanent "
                "error (RFC 7208 section 4.6.4), so SPF fails.",
                "The SPF record of %(domain)s makes %(count)d DNS lookups that find nothing "
                "(%(shown)s); receivers stop at the third such void lookup with a permanent "
                "error (RFC 7208 section 4.6.4), so SPF fails.",
                len(voids),
            )
            % {"domain": domain, "count": len(voids), "shown": shown},
            _(
                "Remove the a:, mx: and exists: terms that name hosts or domains that no longer "
                "exist or have no address (old servers, providers no longer used)."
            ),
        )
    return walk


def _walk_record(
    walk: SpfWalk,
    domain: str,
    record: str,
    *,
    chain: tuple[str, ...],
    resolver: DomainResolver,
    top: bool,
) -> None:
    if "\ufffd" in record or not record.isascii():
        walk.problem(
            "mailops.D022",
            _("The SPF record of %(domain)s contains bytes that are not plain text.")
            % {"domain": domain},
            _("Re-enter the TXT record at your DNS host; SPF records are plain ASCII."),
        )
        return
    targets: list[str] = []
    # (mechanism, domain) of the a/mx/exists terms, looked up for void answers.
    lookups: list[tuple[str, str]] = []
    redirect: str | None = None
    has_all = False
    seen_modifiers: set[str] = set()
    for term in record.split()[1:]:
        mechanism = _MECHANISM.match(term)
        if mechanism and mechanism["name"].lower() in MECHANISMS:
            name = mechanism["name"].lower()
            error = _mechanism_error(name, mechanism["rest"] or "")
            if error:
                _syntax(walk, domain, term, error)
                return
            if name in LOOKUP_MECHANISMS:
                walk.lookups += 1
            if name == "include":
                targets.append(mechanism["rest"][1:])
            if name in VOID_CHECKED:
                spec = (mechanism["rest"] or "").partition("/")[0]
                lookups.append((name, spec[1:] if spec else domain))
            if name == "all":
                has_all = True
                if top and mechanism["qualifier"] in ("", "+"):
                    walk.allows_all = True
            continue
        modifier = _MODIFIER.match(term)
        if modifier:
            key = modifier["name"].lower()
            if key in ("redirect", "exp"):
                if key in seen_modifiers:
                    _syntax(walk, domain, term, _("%(key)s= appears more than once") % {"key": key})
                    return
                seen_modifiers.add(key)
                if not modifier["value"] or not _DOMAIN_SPEC.match(modifier["value"]):
                    _syntax(walk, domain, term, _("%(key)s= needs a domain") % {"key": key})
                    return
                if key == "redirect":
                    redirect = modifier["value"]
            # Unknown modifiers are allowed and ignored (RFC 7208 §6).
            continue
        _syntax(walk, domain, term, _("unknown mechanism"))
        return
    # RFC 7208 §6.1: redirect= is ignored when the record has an "all" mechanism.
    if redirect and not has_all:
        walk.lookups += 1
        targets.append(redirect)
    for name, target in lookups:
        _count_void(walk, name, target, resolver=resolver)
    for target in targets:
        _follow(walk, domain, target, chain=chain, resolver=resolver)


def _follow(
    walk: SpfWalk, domain: str, target: str, *, chain: tuple[str, ...], resolver: DomainResolver
) -> None:
    target = target.lower().rstrip(".")
    if "%" in target:
        # A macro expands per message; nothing to follow statically.
        return
    if target in chain:
        path = " -> ".join((*chain, target))
        walk.problem(
            "mailops.D024",
            _("The SPF record of %(domain)s includes itself in a loop: %(path)s.")
            % {"domain": walk.domain, "path": path},
            _("Remove the include: or redirect= that points back at a domain already on the path."),
        )
        return
    if walk.lookups > LOOKUP_LIMIT:
        walk.truncated = True
        return
    walk.reached.add(target)
    records = spf_records(resolver.txt(target))
    if not records:
        walk.problem(
            "mailops.D026",
            _(
                "The SPF record of %(domain)s refers to %(target)s, which has no SPF record "
                "(a permanent error for receivers)."
            )
            % {"domain": domain, "target": target},
            _(
                "Check the spelling of %(target)s against your provider's instructions, or "
                "remove it."
            )
            % {"target": target},
        )
        return
    if len(records) > 1:
        walk.problem(
            "mailops.D021",
            _(
                "%(target)s (reached from the SPF record of %(domain)s) has %(count)d SPF "
                "records; receivers treat that as a permanent error."
            )
            % {"target": target, "domain": domain, "count": len(records)},
            _("Ask whoever runs %(target)s to merge its SPF records into one.")
            % {"target": target},
        )
        return
    _walk_record(walk, target, records[0], chain=(*chain, target), resolver=resolver, top=False)


def _count_void(walk: SpfWalk, name: str, target: str, *, resolver: DomainResolver) -> None:
    """Look ``target`` up as mechanism ``name`` would; note each lookup that finds nothing.

    Conservative where the answer depends on the connecting client: an ``a``
    lookup counts as void only when the name has neither A nor AAAA records.
    """
    if "%" in target or walk.lookups > LOOKUP_LIMIT:
        # A macro expands per message; past the lookup limit receivers have stopped.
        return
    target = target.lower().rstrip(".")
    if name == "exists":
        if not resolver.records(target, "A"):
            walk.void_lookups.append(f"exists:{target}")
        return
    if name == "a":
        if not _has_address(target, resolver):
            walk.void_lookups.append(f"a:{target}")
        return
    exchanges = resolver.records(target, "MX")
    if not exchanges:
        walk.void_lookups.append(f"mx:{target}")
        return
    for rdata in exchanges[:MX_HOST_LIMIT]:
        host = rdata.exchange.to_text(omit_final_dot=True)
        # A null MX ("MX 0 .", RFC 7505) names no host to look up.
        if host and host != "." and not _has_address(host, resolver):
            walk.void_lookups.append(f"mx:{target} (host {host.lower()})")


def _has_address(name: str, resolver: DomainResolver) -> bool:
    return bool(resolver.records(name, "A") or resolver.records(name, "AAAA"))


def _syntax(walk: SpfWalk, domain: str, term: str, error: str) -> None:
    walk.problem(
        "mailops.D022",
        _("The SPF record of %(domain)s has a syntax error at %(term)r: %(error)s.")
        % {"domain": domain, "term": term, "error": error},
        _(
            "Fix the TXT record: see RFC 7208 section 5 for the mechanisms "
            "(all, include, a, mx, ptr, ip4, ip6, exists)."
        ),
    )


def _mechanism_error(name: str, rest: str) -> str | None:
    """Why ``name`` + ``rest`` (``:domain``, ``/cidr``...) is not valid, or ``None``."""
    if name == "all":
        return _("all takes no argument") if rest else None
    if name in ("include", "exists"):
        if not rest.startswith(":") or not _DOMAIN_SPEC.match(rest[1:]):
            return _("%(name)s needs :domain") % {"name": name}
        return None
    if name in ("ip4", "ip6"):
        if not rest.startswith(":"):
            return _("%(name)s needs an address") % {"name": name}
        try:
            network = ipaddress.ip_network(rest[1:], strict=False)
        except ValueError:
            return _("%(value)r is not a valid %(name)s address or range") % {
                "value": rest[1:],
                "name": name,
            }
        if (network.version == 4) != (name == "ip4"):
            return _("%(value)r is not an %(name)s address") % {"value": rest[1:], "name": name}
        return None
    # a, mx, ptr: optional :domain, then (not for ptr) an optional dual CIDR.
    spec, slash, cidr = rest.partition("/")
    if spec and (not spec.startswith(":") or not _DOMAIN_SPEC.match(spec[1:])):
        return _("%(name)s takes :domain") % {"name": name}
    if slash:
        if name == "ptr":
            return _("ptr takes no prefix length")
        match = _DUAL_CIDR.match("/" + cidr)
        if not match or int(match["v4"] or 0) > 32 or int(match["v6"] or 0) > 128:
            return _("bad prefix length /%(cidr)s") % {"cidr": cidr}
    return None
