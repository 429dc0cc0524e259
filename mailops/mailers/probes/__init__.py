"""Connection checks for anymail providers: one read-only API call per provider.

- Postmark: ``GET {api_url}server`` (:mod:`.postmark`);
- Mailgun: ``GET {api_url, v3 -> v4}domains/{sender domain}`` (:mod:`.mailgun`);
- SendGrid: ``GET {api_url}scopes`` (:mod:`.sendgrid`);
- Brevo: ``GET {api_url}account`` (:mod:`.brevo`);
- Amazon SES: SES v2 ``GetAccount`` through boto3 (:mod:`.amazon_ses`).

Other anymail providers are reported as not supported (not as failed).
Adding a provider is one module with a ``PROBE`` and one line in ``HTTP_PROBES``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from mailops.mailers.probes import brevo, mailgun, postmark, sendgrid
from mailops.mailers.probes.base import (
    HTTPProbe,
    ProbeResult,
    ProbeStatus,
    requests_timeout,
    run_http_probe,
)

# Backend class path -> probe; subclasses (custom backends) match too.
HTTP_PROBES: dict[str, HTTPProbe] = {
    "anymail.backends.postmark.EmailBackend": postmark.PROBE,
    "anymail.backends.mailgun.EmailBackend": mailgun.PROBE,
    "anymail.backends.sendgrid.EmailBackend": sendgrid.PROBE,
    "anymail.backends.brevo.EmailBackend": brevo.PROBE,
}
SES_BACKEND = "anymail.backends.amazon_ses.EmailBackend"

__all__ = ["HTTP_PROBES", "ProbeResult", "ProbeStatus", "probe_provider", "supports_probe"]


def supports_probe(backend_class: type) -> bool:
    """Whether mailops can verify mailers of ``backend_class`` without sending."""
    return any(
        issubclass(backend_class, cls)
        for cls in _probe_classes([*HTTP_PROBES, SES_BACKEND]).values()
    )


def probe_provider(alias: str, backend: Any, *, default_timeout: float) -> ProbeResult:
    """Make the read-only API call for ``backend`` (the instance ``mailers[alias]``).

    Waits at most the mailer's ``timeout`` option, else ``default_timeout``
    seconds. Never raises for what the provider or the network does.
    """
    for path, cls in _probe_classes(HTTP_PROBES).items():
        if isinstance(backend, cls):
            timeout = requests_timeout(alias, backend, default_timeout)
            return run_http_probe(HTTP_PROBES[path], alias, backend, timeout)
    ses = _probe_classes([SES_BACKEND]).get(SES_BACKEND)
    if ses is not None and isinstance(backend, ses):
        # Imported here: it needs boto3, which only SES mailers install.
        from mailops.mailers.probes.amazon_ses import probe_ses

        return probe_ses(backend, default_timeout=default_timeout)
    esp = str(getattr(backend, "esp_name", "") or type(backend).__name__)
    return ProbeResult(
        ProbeStatus.UNSUPPORTED,
        _(
            "connection check not supported for %(provider)s: send a test mail instead "
            "(sendtestmail ADDRESS --using %(alias)s)"
        )
        % {"provider": esp, "alias": alias},
    )


def _probe_classes(paths: Iterable[str]) -> dict[str, type]:
    classes = {}
    for path in paths:
        try:
            classes[path] = import_string(path)
        except ImportError:
            # Amazon SES needs boto3 (anymail's "amazon-ses" extra).
            continue
    return classes
