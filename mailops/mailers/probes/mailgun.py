"""Mailgun: ``GET {api_url, v3 -> v4}domains/{sender domain}``, basic auth ``api:key``."""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parseaddr
from typing import Any
from urllib.parse import quote

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from mailops.conf import from_email_for
from mailops.mailers.probes.base import HTTPProbe, ProbeRequest, Verdict


def _mailgun_request(backend: Any, key: str, alias: str) -> ProbeRequest:
    domain = mailgun_sender_domain(backend, alias)
    api_url = str(backend.api_url)
    # Anymail's api_url names the v3 API that sends; domains live in v4 (v3's are legacy).
    if api_url.endswith("/v3/"):
        api_url = api_url[: -len("v3/")] + "v4/"
    return ProbeRequest(
        f"{api_url}domains/{quote(domain, safe='')}",
        {"Accept": "application/json"},
        auth=("api", key),
    )


def mailgun_sender_domain(backend: Any, alias: str) -> str:
    """The domain anymail sends from: ``sender_domain``, else the From address's."""
    if backend.sender_domain:
        return str(backend.sender_domain)
    return parseaddr(from_email_for(alias))[1].rpartition("@")[2]


def _mailgun_accept(body: Any) -> Verdict:
    domain = body.get("domain") if isinstance(body, Mapping) else None
    if not isinstance(domain, Mapping):
        return Verdict(unrecognised=_("Mailgun's domain details"))
    name, state = domain.get("name", ""), domain.get("state", "")
    warnings: tuple[str, ...] = ()
    if state and state != "active":
        warnings = (
            _(
                "Mailgun reports the domain %(name)r as %(state)r: it sends only once "
                "its DNS records are verified and it is not disabled"
            )
            % {"name": name, "state": state},
        )
    note = _("domain %(name)r") % {"name": name}
    return Verdict(f"{note}, {state}" if state else note, warnings)


PROBE = HTTPProbe(
    "Mailgun",
    "api_key",
    _mailgun_request,
    _mailgun_accept,
    refusal_hint=gettext_lazy(
        "the check needs an account API key; a Domain Sending Key may only "
        "send, so check such a mailer by sending a test mail"
    ),
    not_found_hint=gettext_lazy(
        "Mailgun does not know this sender domain: check sender_domain or the "
        "From address, and the API region (EU domains use https://api.eu.mailgun.net/v3/)"
    ),
)
