"""Turn a delivery exception into a readable, redacted reason.

Expected delivery failures are data: a ``failed`` row says what the server
answered, with its SMTP code, and a hint at the usual fix.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from dataclasses import dataclass
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from mailops.conf import stored_language
from mailops.mailers.provider_errors import HTTP_HINTS, clean, provider_reason, unreachable_reason
from mailops.redaction import redact

# What operators most often need to hear for the common SMTP refusals.
SMTP_HINTS: dict[int, str | Promise] = {
    421: gettext_lazy(
        "the server is closing the connection (rate limit or temporary trouble); try again later"
    ),
    450: gettext_lazy("the mailbox is temporarily unavailable; try again later"),
    451: gettext_lazy("the server had a local error; try again later"),
    452: gettext_lazy("the server is out of storage or over a sending quota; try again later"),
    530: gettext_lazy(
        "the server requires authentication or STARTTLS first; use smtp+tls:// "
        "with a user and password"
    ),
    534: gettext_lazy(
        "the server wants an application-specific password; for Gmail create an "
        "App Password (needs 2-Step Verification)"
    ),
    535: gettext_lazy(
        "username and password not accepted; for Gmail use the 16-letter App "
        "Password, not the account password"
    ),
    550: gettext_lazy("the mailbox is unavailable or the server refuses to relay for this sender"),
    552: gettext_lazy("the message exceeds the server's size or storage limit"),
    553: gettext_lazy("the address is not allowed (check the From address and relay permissions)"),
    554: gettext_lazy("the server refused the transaction (often a spam or policy block)"),
}

# A sender whose domain has no dot (mailops@localhost, Django's webmaster@localhost):
# Postfix's reject_non_fqdn_sender and most providers refuse it (mailops.W012).
UNQUALIFIED_SENDER_HINT = gettext_lazy(
    "the sender's domain is not fully qualified (mailops.W012); set DEFAULT_FROM_EMAIL, "
    "or the mailer's ?from= / MAILOPS['FROM_EMAILS'] address, to an address at your "
    "own domain, e.g. ops@example.com"
)

# Replies to RCPT that blame the sender, not the recipient: Postfix checks the
# sender at RCPT by default (smtpd_delay_reject), Exim after its sender
# verification; RFC 3463's X.1.7/X.1.8 are the sender's address.
_BLAMES_SENDER = re.compile(
    r"sender address rejected|sender verify|^[45]\.1\.[78]\b", re.IGNORECASE
)
# Replies that say the sender's domain is not fully qualified (Postfix, Sendmail).
_ASKS_FOR_FQDN = re.compile(r"fully[- ]qualified|domain name required", re.IGNORECASE)
# Codes a server gives an unqualified sender: Postfix 504, Sendmail 553, others 501/550.
_UNQUALIFIED_SENDER_CODES = frozenset({501, 504, 550, 553})
_QUOTED_ADDRESS = re.compile(r"<([^<>\s]+)>")


def unqualified_domain(address: str) -> bool:
    """Whether ``address`` (a bare address) has a domain without a dot, like ``mailops@localhost``.

    An address literal (``user@[192.0.2.1]``) counts as qualified.
    """
    if not address:
        return False
    domain = address.rpartition("@")[2].rstrip(".")
    return "." not in domain and not domain.startswith("[")


@dataclass(frozen=True)
class SMTPState:
    """What an smtplib connection knew when a command failed: the last EHLO's extensions, TLS."""

    # EHLO keywords in lower case: "starttls", "auth", "size" ...
    extensions: frozenset[str]
    # TLS is on (implicit TLS, or after STARTTLS).
    tls: bool


def smtp_state(connection: Any) -> SMTPState | None:
    """The state of an ``smtplib.SMTP`` connection; ``None`` if none or not greeted yet."""
    if not isinstance(connection, smtplib.SMTP):
        return None
    if connection.ehlo_resp is None and connection.helo_resp is None:
        return None
    tls = isinstance(connection, smtplib.SMTP_SSL) or isinstance(connection.sock, ssl.SSLSocket)
    return SMTPState(extensions=frozenset(connection.esmtp_features), tls=tls)


def opening_state(backend: Any) -> SMTPState | None:
    """The state of the connection Django's SMTP backend was opening when ``open()`` raised.

    Django keeps a connection that failed after connecting (at STARTTLS or
    AUTH) as ``_partial_connection`` until ``close()``; other backends have none.
    """
    return smtp_state(getattr(backend, "_partial_connection", None))


@dataclass(frozen=True)
class Failure:
    """Why one message was not accepted."""

    reason: str
    smtp_code: int | None = None
    # A retry may succeed (4xx reply, timeout, dropped connection).
    transient: bool = False
    # The connection can no longer be used for the following messages.
    connection_lost: bool = False
    # The whole message reached the server but its reply did not: it may
    # have been delivered, so it must not be retried automatically.
    in_doubt: bool = False


def describe_failure(
    error: BaseException, *, mailer: str | None = None, smtp: SMTPState | None = None
) -> Failure:
    """A :class:`Failure` for ``error``, its text redacted of every secret.

    ``smtp`` is what the connection knew when it failed (:func:`smtp_state`,
    :func:`opening_state`): with it, the advice for a command the server did
    not offer is as firm as the connection check's, which passes it too.
    """
    # The reason is stored in a row: written in the site's language (see stored_language).
    with stored_language():
        failure = _classify(error, smtp)
    reason = failure.reason
    if mailer:
        reason = f"[{mailer}] {reason}"
    return Failure(
        reason=redact(reason),
        smtp_code=failure.smtp_code,
        transient=failure.transient,
        connection_lost=failure.connection_lost,
    )


def _smtp_text(raw: bytes | str) -> str:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    return " ".join(raw.split())


def _classify(error: BaseException, smtp: SMTPState | None) -> Failure:
    # First: anymail's API errors are also OSError/ValueError subclasses.
    anymail = _classify_anymail(error)
    if anymail is not None:
        return anymail
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        address, (code, text) = next(iter(error.recipients.items()))
        said = _smtp_text(text)
        if _BLAMES_SENDER.search(said):
            # Postfix names the sender in its reply: <mailops@localhost>: Sender address rejected.
            quoted = _QUOTED_ADDRESS.search(said)
            hint = _sender_hint(code, said, quoted.group(1) if quoted else "")
            return _reply(
                _("sender refused (at RCPT TO <%(address)s>)") % {"address": address},
                code,
                said,
                hint=hint,
            )
        return _reply(_("recipient refused"), code, said, detail=address)
    if isinstance(error, smtplib.SMTPSenderRefused):
        said = _smtp_text(error.smtp_error)
        hint = _sender_hint(error.smtp_code, said, error.sender)
        return _reply(_("sender refused"), error.smtp_code, said, detail=error.sender, hint=hint)
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return _reply(_("authentication failed"), error.smtp_code, error.smtp_error)
    if isinstance(error, smtplib.SMTPDataError):
        return _reply(_("message refused"), error.smtp_code, error.smtp_error)
    if isinstance(error, smtplib.SMTPResponseException):
        return _reply(_("server refused"), error.smtp_code, error.smtp_error)
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return Failure(not_offered_advice(str(error), smtp), connection_lost=True)
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return Failure(
            _("the server closed the connection unexpectedly (%(reason)s)")
            % {"reason": error or _("no reason given")},
            transient=True,
            connection_lost=True,
        )
    if isinstance(error, ssl.SSLCertVerificationError):
        return Failure(
            _(
                "TLS certificate verification failed: %(error)s. "
                "Check the host name matches the server's certificate"
            )
            % {"error": error.verify_message or error},
            connection_lost=True,
        )
    if isinstance(error, ssl.SSLError):
        return Failure(
            _(
                "TLS handshake failed (%(error)s). A port that expects STARTTLS (587) needs "
                "smtp+tls://, one that expects implicit TLS (465) smtps://"
            )
            % {"error": error.reason or error},
            connection_lost=True,
        )
    if isinstance(error, socket.gaierror):
        return Failure(
            _("cannot resolve the mail server's host name (%(error)s)") % {"error": error.strerror},
            connection_lost=True,
        )
    if isinstance(error, ConnectionRefusedError):
        return Failure(
            _("connection refused: nothing is listening at the mailer's host and port"),
            transient=True,
            connection_lost=True,
        )
    if isinstance(error, TimeoutError | socket.timeout):
        return Failure(
            _("timed out talking to the mail server"), transient=True, connection_lost=True
        )
    if isinstance(error, OSError):
        return Failure(
            _("network error: %(error)s") % {"error": error.strerror or error},
            transient=True,
            connection_lost=True,
        )
    if isinstance(error, ValueError):
        return Failure(_("invalid message: %(error)s") % {"error": error})
    return Failure(f"{type(error).__name__}: {error}")


def not_offered_advice(said: str, smtp: SMTPState | None) -> str:
    """What to do when smtplib refuses a command the server did not offer (``said``: its text).

    The one place that decides this advice: a send and the connection check
    both get it through :func:`describe_failure`. ``smtp`` is what the server
    offered (``None``: unknown, so the advice covers both likely causes).
    """
    said = said.rstrip(". ")
    words = said.upper().split()
    if words[:1] == ["STARTTLS"]:
        return _(
            "the server does not offer STARTTLS, which the mailer requires (use_tls). "
            "It may expect implicit TLS (smtps://, port 465) or speak no TLS at all"
        )
    if "AUTH" in words:
        if smtp is None:
            return _(
                "the server does not offer AUTH on this connection. If it offers it after "
                "STARTTLS, use smtp+tls:// (use_tls=True); if it relays without a "
                "password, remove the mailer's username and password"
            )
        if not smtp.tls and "starttls" in smtp.extensions:
            # Postfix's smtpd_tls_auth_only, the usual submission port (587).
            return _(
                "the server does not offer AUTH before STARTTLS, and the mailer does "
                "not use TLS: use smtp+tls:// (use_tls=True)"
            )
        return _(
            "the server does not offer AUTH; if it relays without a password, "
            "remove the mailer's username and password"
        )
    return _("the server does not support what the mailer asked for (%(said)s)") % {"said": said}


def _sender_hint(code: int, said: str, sender: str) -> str | Promise | None:
    """The unqualified-sender hint when the refusal is about that; else the code's own."""
    if _ASKS_FOR_FQDN.search(said) or (
        code in _UNQUALIFIED_SENDER_CODES and unqualified_domain(sender)
    ):
        return UNQUALIFIED_SENDER_HINT
    return None


def _reply(
    what: str, code: int, text: bytes | str, *, detail: str = "", hint: str | Promise | None = None
) -> Failure:
    about = f" <{detail}>" if detail else ""
    reason = f"{what}{about}: {code} {_smtp_text(text)}".rstrip()
    hint = hint or SMTP_HINTS.get(code)
    if hint:
        reason = _("%(reason)s (hint: %(hint)s)") % {"reason": reason, "hint": hint}
    return Failure(
        reason,
        smtp_code=code if 100 <= code <= 599 else None,
        transient=400 <= code < 500,
        # smtplib closes the socket itself after a 421.
        connection_lost=code == 421,
    )


def _classify_anymail(error: BaseException) -> Failure | None:
    """A :class:`Failure` naming the provider, its HTTP status and its own reason."""
    try:
        from anymail.exceptions import AnymailError, AnymailRecipientsRefused
    except ImportError:  # pragma: no cover - anymail is a hard dependency
        return None
    if not isinstance(error, AnymailError):
        return None
    # Errors raised before the provider answered may only know their payload.
    backend = getattr(getattr(error, "payload", None), "backend", None)
    esp = error.esp_name or getattr(backend, "esp_name", None) or _("the provider")
    status, detail = _provider_response(error)
    http = f" (HTTP {status})" if status else ""
    if isinstance(error, AnymailRecipientsRefused):
        return Failure(
            _("%(provider)s rejected the recipient%(http)s: %(detail)s")
            % {
                "provider": esp,
                "http": http,
                "detail": detail or _("all recipients were rejected or invalid"),
            }
        )
    if status is not None:
        # Anymail's own explanation (e.g. "Unknown sender domain ...") comes first.
        own = clean(" ".join(str(arg) for arg in error.args if arg))
        if own and not isinstance(error.response, dict) and own not in detail:
            detail = f"{own} {detail}".strip()
        hint = HTTP_HINTS.get(status) or (HTTP_HINTS[500] if status >= 500 else "")
        reason = _("%(provider)s API error%(http)s: %(detail)s") % {
            "provider": esp,
            "http": http,
            "detail": detail or _("no reason given"),
        }
        if hint:
            reason = _("%(reason)s (hint: %(hint)s)") % {"reason": reason, "hint": hint}
        return Failure(reason, transient=status >= 500 or status == 429)
    unreachable = unreachable_reason(error.__cause__) if error.__cause__ else None
    if unreachable is not None:
        if esp != _("the provider"):
            api = _("the %(provider)s API") % {"provider": esp}
        else:
            api = _("the provider's API")
        return Failure(
            _("cannot reach %(api)s: %(reason)s") % {"api": api, "reason": unreachable},
            transient=True,
        )
    return Failure(
        _("cannot send through %(provider)s: %(detail)s")
        % {"provider": esp, "detail": detail or clean(str(error))}
    )


def _provider_response(error: Any) -> tuple[int | None, str]:
    """The HTTP status and the provider's own reason, from the error's response."""
    response = getattr(error, "response", None)
    status = getattr(error, "status_code", None)
    detail = ""
    if isinstance(response, dict):
        # boto3 (Amazon SES) hands anymail the parsed error of a ClientError.
        status = status or response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        body = response.get("Error", {})
        code, message = body.get("Code", ""), body.get("Message", "")
        detail = f"{message} [code {code}]" if code and message else message or code
    elif response is not None and hasattr(response, "status_code"):
        status = status or response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        detail = provider_reason(body, str(getattr(response, "text", "") or ""))
    return (status if isinstance(status, int) else None), clean(detail)
