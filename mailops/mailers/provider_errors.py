"""Reading what a provider API or the network said, once for sends and checks alike.

A send through anymail (:mod:`mailops.mailers.errors`) and a connection
check (:mod:`mailops.mailers.probes`) meet the same error bodies and the same
refused or timed-out connections; both read them here, so the same failure
reads the same after a send and after a check.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Mapping
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

# Where providers put their reason in a JSON error body, most specific first.
MESSAGE_KEYS = ("Message", "message", "error_description", "error", "detail", "title")
# A provider's reason is cut to this many characters.
REASON_LIMIT = 1000

# What operators most often need to hear for a provider API's HTTP status.
HTTP_HINTS: dict[int, str | Promise] = {
    401: gettext_lazy(
        "the provider did not accept the API key or token; check the mailer's key option"
    ),
    403: gettext_lazy("the API key lacks permission for sending, or the sender is not verified"),
    404: gettext_lazy("check the API URL (region) and the sender domain"),
    413: gettext_lazy("the message is larger than the provider accepts"),
    429: gettext_lazy("the provider is rate-limiting this account; try again later"),
    500: gettext_lazy("the provider had a temporary problem; try again later"),
}


def clean(text: str, limit: int = REASON_LIMIT) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def provider_reason(body: Any, text: str = "", *, limit: int = REASON_LIMIT) -> str:
    """The provider's own words in an error answer: its JSON ``body``, else the raw ``text``."""
    return clean(text if body is None else _message(body), limit)


def _message(body: Any) -> str:
    if isinstance(body, list):
        return "; ".join(filter(None, (_message(item) for item in body)))
    if not isinstance(body, Mapping):
        return str(body)
    if isinstance(body.get("errors"), list):
        # SendGrid: {"errors": [{"message": ..., "field": ...}]}
        parts = []
        for item in body["errors"]:
            if isinstance(item, Mapping):
                field = f" ({item['field']})" if item.get("field") else ""
                parts.append(f"{_message(item)}{field}")
            else:
                parts.append(str(item))
        return "; ".join(parts)
    message = next((str(body[key]) for key in MESSAGE_KEYS if body.get(key)), "")
    # Postmark's ErrorCode and Brevo's code say which kind of refusal it was.
    code = body.get("ErrorCode", body.get("code"))
    if message and code not in (None, "", 0):
        return f"{message} [code {code}]"
    return message or json.dumps(dict(body), sort_keys=True, default=str)


def unreachable_reason(error: BaseException) -> str | None:
    """Why a provider's API could not be reached at all, or ``None`` if it answered.

    requests, urllib3 and botocore wrap the socket error: the whole chain is
    read (bounded: chains can be long, or even circular).
    """
    chain: list[object] = []
    wrapped = getattr(error, "kwargs", {})
    if isinstance(wrapped, Mapping) and wrapped.get("error") is not None:
        chain.append(wrapped["error"])  # botocore keeps the cause here
    cause: BaseException | None = error
    for _depth in range(10):
        if cause is None:
            break
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    names = " ".join(type(item).__name__ for item in chain)
    text = " ".join(str(item) for item in chain).lower()
    if any(isinstance(item, TimeoutError | socket.timeout) for item in chain) or "Timeout" in names:
        return _("timed out")
    if "refused" in text:
        return _("connection refused")
    if "name or service not known" in text or "nodename nor servname" in text:
        return _("host name not resolved")
    if "certificate" in text or "sslerror" in names.lower():
        return _("TLS failed: check the API URL and the certificate")
    if any(isinstance(item, ConnectionError) for item in chain) or "ConnectionError" in names:
        errno = re.search(r"\[Errno -?\d+\] [^'\")\]]+", text)
        return errno[0].strip() if errno else _("could not connect")
    return None
