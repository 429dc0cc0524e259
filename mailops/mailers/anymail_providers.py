"""The anymail providers a mailer URL can name: whatever the installed anymail ships.

Anymail keeps one module per provider under ``anymail.backends``, each with
its backend class named ``EmailBackend`` (``anymail.backends.mailtrap.EmailBackend``),
beside its shared bases (``base``, ``base_requests``). The modules are listed,
not imported: settings read mailer URLs at start-up, and importing every
provider (boto3 for Amazon SES) there would slow every ``manage.py`` call.

A URL scheme cannot contain ``_`` (RFC 3986 §3.1), so a module name such as
``amazon_ses`` is written ``amazonses`` or ``amazon-ses`` in a URL.
"""

from __future__ import annotations

import functools
import pkgutil

# Names earlier mailops versions accepted, kept working.
ALIASES = {"ses": "amazon_ses"}

# Amazon SES is configured through boto3's session and client parameters
# (anymail has no region or key option of its own): these query parameters
# of its URL go there. Without keys, boto3 reads AWS_* or the instance role.
SES_SESSION_PARAMETERS = (
    "region_name",
    "profile_name",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
)
SES_CLIENT_PARAMETERS = ("endpoint_url",)


@functools.cache
def installed_providers() -> tuple[str, ...]:
    """The provider modules of the installed anymail, sorted (``amazon_ses``, ``brevo``, …)."""
    try:
        import anymail.backends
    except ImportError:
        return ()
    return tuple(
        sorted(
            module.name
            for module in pkgutil.iter_modules(anymail.backends.__path__)
            # base and base_requests hold the classes every provider builds on.
            if not module.ispkg and not module.name.startswith(("_", "base"))
        )
    )


def backend_path(provider: str) -> str:
    """The ``BACKEND`` of anymail provider module ``provider``."""
    return f"anymail.backends.{provider}.EmailBackend"


def url_name(provider: str) -> str:
    """``provider`` (a module name) as a URL scheme writes it: ``amazon_ses`` -> ``amazonses``."""
    return provider.replace("_", "")


def find_provider(name: str) -> str | None:
    """The provider module a URL names (``amazonses``, ``amazon-ses``, ``ses``), or ``None``."""
    wanted = name.lower().replace("-", "_")
    wanted = ALIASES.get(wanted, wanted)
    providers = installed_providers()
    if wanted in providers:
        return wanted
    return {url_name(provider): provider for provider in providers}.get(url_name(wanted))


def provider_listing() -> str:
    """The installed providers as written in URLs, for error messages."""
    return ", ".join(url_name(provider) for provider in installed_providers()) or (
        "(none: django-anymail is not installed)"
    )
