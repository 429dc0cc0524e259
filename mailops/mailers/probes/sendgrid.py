"""SendGrid: ``GET {api_url}scopes`` with ``Authorization: Bearer key``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext as _

from mailops.mailers.probes.base import HTTPProbe, ProbeRequest, Verdict


def _sendgrid_request(backend: Any, key: str, alias: str) -> ProbeRequest:
    return ProbeRequest(
        f"{backend.api_url}scopes",
        {"Accept": "application/json", "Authorization": f"Bearer {key}"},
    )


def _sendgrid_accept(body: Any) -> Verdict:
    scopes = body.get("scopes") if isinstance(body, Mapping) else None
    if not isinstance(scopes, list):
        return Verdict(unrecognised=_("SendGrid's list of scopes"))
    if "mail.send" not in scopes:
        # A restricted key can read its scopes but SendGrid refuses its sends.
        return Verdict(failure=_("the API key is valid but lacks the mail.send permission"))
    return Verdict(_("key may send mail"))


PROBE = HTTPProbe("SendGrid", "api_key", _sendgrid_request, _sendgrid_accept)
