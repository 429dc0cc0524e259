"""Brevo: ``GET {api_url}account`` with the ``api-key`` header."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from mailops.mailers.probes.base import HTTPProbe, ProbeRequest, Verdict


def _brevo_request(backend: Any, key: str, alias: str) -> ProbeRequest:
    return ProbeRequest(f"{backend.api_url}account", {"Accept": "application/json", "api-key": key})


def _brevo_accept(body: Any) -> Verdict:
    if not isinstance(body, Mapping) or not ({"email", "plan"} & body.keys()):
        return Verdict(unrecognised=_("Brevo's account details"))
    company = str(body.get("companyName") or "")
    return Verdict(_("account %(company)r") % {"company": company} if company else "")


PROBE = HTTPProbe(
    "Brevo",
    "api_key",
    _brevo_request,
    _brevo_accept,
    refusal_hint=gettext_lazy(
        "Brevo also refuses keys used from an IP address missing from its authorised IPs"
    ),
)
