"""DKIM: does each configured selector publish a public key a receiver can verify with?

Selectors come from ``MAILOPS["DKIM_SELECTORS"]`` (``{alias: [selector, ...]}``,
filled from ``?dkim_selector=`` on a mailer URL). A DKIM selector cannot be
discovered from DNS, so without one the doctor can only say it did not check.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_der_public_key
from django.utils.translation import gettext as _

from mailops.deliverability.findings import MailerReport
from mailops.deliverability.resolver import DomainResolver

# RFC 8301 §3.2: verifiers must not accept RSA keys under 1024 bits; signers should use 2048.
MIN_RSA_BITS = 1024
GOOD_RSA_BITS = 2048


def parse_tags(record: str) -> dict[str, str]:
    """``k=v; k=v`` tag lists (DKIM, DMARC) as a dict; whitespace inside values dropped."""
    tags: dict[str, str] = {}
    for part in record.split(";"):
        name, equals, value = part.partition("=")
        if equals:
            tags[name.strip().lower()] = "".join(value.split())
    return tags


def check_dkim(report: MailerReport, *, selectors: list[str], resolver: DomainResolver) -> bool:
    """Add DKIM findings to ``report``; ``True`` when some selector has a usable key."""
    domain = report.domain
    if not selectors:
        report.add(
            "mailops.D050",
            _(
                "No DKIM selector is configured for mailer %(alias)r, so DKIM on "
                "%(domain)s was not checked."
            )
            % {"alias": report.alias, "domain": domain},
            _(
                "Add ?dkim_selector=<selector> to the mailer URL (or MAILOPS['DKIM_SELECTORS']); "
                "your provider or mail host names the selector when you set up DKIM."
            ),
        )
        return False
    usable = False
    for selector in selectors:
        name = f"{selector}._domainkey.{domain}"
        records = [text for text in resolver.txt(name) if "p=" in text.replace(" ", "")]
        if not records:
            report.add(
                "mailops.D051",
                _("DKIM selector %(selector)r: no key record at %(name)s.")
                % {"selector": selector, "name": name},
                _(
                    "Publish the TXT (or CNAME) record your mail provider gives for this "
                    "selector, or correct the selector name in the mailer settings."
                ),
            )
            continue
        problem = _key_problem(parse_tags(records[0]))
        if problem is None:
            usable = True
            continue
        finding_id, message = problem
        report.add(
            finding_id,
            _("DKIM selector %(selector)r at %(name)s: %(problem)s.")
            % {"selector": selector, "name": name, "problem": message},
            _(
                "Copy the public key again from your mail provider into the TXT record "
                "(one p= value, base64, no line breaks or quotes inside it)."
            )
            if finding_id == "mailops.D052"
            else _(
                "Generate a 2048-bit key at your mail provider; publish it under a new selector."
            ),
        )
        usable = usable or finding_id == "mailops.D053"
    return usable


def _key_problem(tags: dict[str, str]) -> tuple[str, str] | None:
    if tags.get("v", "DKIM1") != "DKIM1":
        return "mailops.D052", _("v=%(version)s is not DKIM1") % {"version": tags["v"]}
    key_text = tags.get("p", "")
    if not key_text:
        return "mailops.D052", _("the key is empty (p=), which means it was revoked")
    try:
        key_bytes = base64.b64decode(key_text, validate=True)
    except (binascii.Error, ValueError):
        return "mailops.D052", _("p= is not valid base64")
    key_type = tags.get("k", "rsa").lower()
    if key_type == "ed25519":
        # RFC 8463: the raw 32-byte public key, not DER.
        try:
            Ed25519PublicKey.from_public_bytes(key_bytes)
        except ValueError:
            return "mailops.D052", _("p= is not a 32-byte Ed25519 key")
        return None
    if key_type != "rsa":
        return "mailops.D052", _("unknown key type k=%(type)s") % {"type": key_type}
    try:
        key = load_der_public_key(key_bytes)
    except (ValueError, TypeError):
        return "mailops.D052", _("p= does not hold an RSA public key")
    if not isinstance(key, RSAPublicKey):
        return "mailops.D052", _("p= holds a key that is not RSA although k=rsa")
    if key.key_size < MIN_RSA_BITS:
        return (
            "mailops.D052",
            _("the RSA key has %(bits)d bits; receivers ignore keys under %(minimum)d")
            % {"bits": key.key_size, "minimum": MIN_RSA_BITS},
        )
    if key.key_size < GOOD_RSA_BITS:
        return "mailops.D053", _("the RSA key has %(bits)d bits; use %(good)d") % {
            "bits": key.key_size,
            "good": GOOD_RSA_BITS,
        }
    return None
