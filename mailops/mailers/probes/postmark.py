"""Postmark: ``GET {api_url}server`` with the ``X-Postmark-Server-Token`` header."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext as _

from mailops.mailers.probes.base import HTTPProbe, ProbeRequest, Verdict


def _postmark_request(backend: Any, key: str, alias: str) -> ProbeRequest:
    return ProbeRequest(
        f"{backend.api_url}server",
        {"Accept": "application/json", "X-Postmark-Server-Token": key},
    )


def _postmark_accept(body: Any) -> Verdict:
    # The body also lists the server's API tokens: read the name, nothing else.
    if not isinstance(body, Mapping) or "Name" not in body:
        return Verdict(unrecognised=_("Postmark's server details"))
    return Verdict(_("server %(name)r") % {"name": str(body["Name"])})


PROBE = HTTPProbe("Postmark", "server_token", _postmark_request, _postmark_accept)
