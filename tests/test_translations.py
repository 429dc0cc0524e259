"""mailops speaks the site's language: a complete German catalogue, compiled and current."""

from __future__ import annotations

import gettext
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone, translation

import mailops
from mailops.mailers.errors import describe_failure
from mailops.sending.composition import default_body, default_subject
from tests.catalogues import LOCALE, catalogue, read_po

LANGUAGES = sorted(path.name for path in LOCALE.iterdir() if path.is_dir())


def test_german_is_shipped() -> None:
    assert "de" in LANGUAGES


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_is_translated_and_none_is_fuzzy(language: str) -> None:
    entries = [entry for entry in read_po(catalogue(language)) if not entry.obsolete]
    assert len(entries) > 400
    untranslated = [entry.msgid for entry in entries if not entry.translated]
    fuzzy = [entry.msgid for entry in entries if "fuzzy" in entry.flags]
    assert untranslated == []
    assert fuzzy == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_placeholders_match_the_english(language: str) -> None:
    # msgfmt --check: every %(name)s of a translation exists in the English text.
    subprocess.run(
        ["msgfmt", "--check", "-o", "/dev/null", str(catalogue(language))],
        check=True,
        capture_output=True,
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalogue_matches_the_po(language: str) -> None:
    po = catalogue(language)
    with po.with_suffix(".mo").open("rb") as compiled:
        shipped: dict[Any, str] = gettext.GNUTranslations(compiled)._catalog  # type: ignore[attr-defined]
    expected: dict[Any, str] = {}
    for entry in read_po(po):
        if entry.obsolete:
            continue
        key = f"{entry.msgctxt}\x04{entry.msgid}" if entry.msgctxt else entry.msgid
        if entry.msgid_plural is None:
            expected[key] = entry.msgstr[0]
        else:
            expected.update({(key, n): text for n, text in entry.msgstr.items()})
    shipped.pop("", None)  # the header
    assert shipped == expected, "run compilemessages in mailops/ (the .mo is stale)"


def test_every_marked_string_is_in_the_german_catalogue(tmp_path: Path, monkeypatch: Any) -> None:
    """makemessages over the code finds no msgid the shipped catalogue lacks, and none extra."""
    source = Path(mailops.__file__).resolve().parent
    copy = tmp_path / "mailops"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    monkeypatch.chdir(copy)
    call_command("makemessages", locale=["de"], verbosity=0)
    regenerated = read_po(copy / "locale" / "de" / "LC_MESSAGES" / "django.po")
    current = {(e.msgctxt, e.msgid) for e in regenerated if not e.obsolete}
    shipped = {(e.msgctxt, e.msgid) for e in read_po(catalogue("de")) if not e.obsolete}
    assert sorted(current - shipped, key=str) == [], "marked but not in locale/de: run makemessages"
    assert sorted(shipped - current, key=str) == [], "in locale/de but no longer marked"


def test_the_default_test_mail_is_german_under_a_german_locale() -> None:
    with translation.override("de"):
        subject = default_subject("default")
        body = default_body("default")
    assert subject.startswith("Testmail von ")
    assert subject.endswith(" über default")
    assert "Dies ist eine Testmail" in body
    assert "Mailer: default" in body
    # And English again outside, evaluated when composed, not when imported.
    with translation.override("en"):
        assert default_subject("default").startswith("Test mail from ")


def test_a_stored_failure_reason_is_in_the_site_language_whoever_triggered_it() -> None:
    refused = ConnectionRefusedError()
    # A German admin's request on an English site: the row says it in English.
    with override_settings(LANGUAGE_CODE="en-us"), translation.override("de"):
        assert describe_failure(refused).reason.startswith("connection refused: nothing")
    # A German site: German, even from an English context (a worker, a command).
    with override_settings(LANGUAGE_CODE="de"), translation.override("en"):
        assert describe_failure(refused).reason.startswith("Verbindung abgelehnt: ")


@pytest.mark.django_db
def test_commands_speak_language_code() -> None:
    # Django 6.1 runs commands with no language activated: gettext answers in
    # LANGUAGE_CODE (manage.py and call_command alike).
    with override_settings(LANGUAGE_CODE="de"), pytest.raises(CommandError) as error:
        call_command("sendtestmail", "--check", "--all-mailers", "--using", "default")
    assert str(error.value) == "Verwenden Sie entweder --using ALIAS oder --all-mailers."


def test_system_checks_speak_the_active_language() -> None:
    from mailops.checks import check_mailops_settings

    with override_settings(MAILOPS={"DEFAULT_MAILER": "default", "CHUNK_SIZ": 10}):
        with translation.override("de"):
            (warning,) = [m for m in check_mailops_settings() if m.id == "mailops.W008"]
        assert (
            warning.msg
            == "MAILOPS hat einen unbekannten Schlüssel 'CHUNK_SIZ'; mailops ignoriert ihn."
        )
        assert warning.hint.startswith("Meinten Sie 'CHUNK_SIZE'? Bekannte Schlüssel: ")


def test_the_doctor_speaks_the_active_language() -> None:
    from mailops.deliverability.doctor import diagnose_mailer

    with override_settings(DEFAULT_FROM_EMAIL="webmaster"), translation.override("de"):
        (finding,) = diagnose_mailer("default").findings
    assert finding.id == "mailops.D001"
    assert finding.message == (
        "Mailer 'default' sendet von 'webmaster', das keine verwendbare Domain hat."
    )
    assert finding.hint.startswith("Legen Sie die Absenderadresse mit ?from= ")


@pytest.mark.django_db
def test_the_reference_project_follows_the_browser_language(admin_client: Any) -> None:
    # LocaleMiddleware: an English site shows a German browser the German admin.
    response = admin_client.get("/admin/mailops/maillog/", headers={"accept-language": "de"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Mail-Protokolleintrag zum Ansehen auswählen" in html
    assert "Keine Einträge." in html or "In dieser Liste" in html
    english = admin_client.get("/admin/mailops/maillog/", headers={"accept-language": "fr"})
    assert "Select mail log entry to view" in english.content.decode()


@pytest.mark.django_db
def test_a_suppressed_recipients_reason_is_in_the_site_language_in_python_and_sql() -> None:
    from mailops.suppression.feed import suppress_address
    from mailops.suppression.models import Suppression, SuppressionReason
    from mailops.suppression.selection import rejection_text

    entry = suppress_address("gone@example.com", reason=SuppressionReason.MANUAL)
    since = timezone.localtime(entry.created_at).date().isoformat()
    # A German site: German, even when an English request or worker causes the row.
    with override_settings(LANGUAGE_CODE="de"), translation.override("en"):
        assert entry.rejection_reason == f"gesperrt seit {since}: von Hand hinzugefügt"
        from_sql = Suppression.objects.annotate(text=rejection_text()).get().text
        assert from_sql == entry.rejection_reason
    # An English site: English, even from a German admin's request.
    with override_settings(LANGUAGE_CODE="en-us"), translation.override("de"):
        assert entry.rejection_reason == f"suppressed since {since}: added by hand"
        assert Suppression.objects.annotate(text=rejection_text()).get().text == (
            entry.rejection_reason
        )


def test_suppression_checks_speak_the_active_language() -> None:
    from mailops.suppression.checks import check_suppression_settings

    bypass = ["myproject.forms.NoSuchForm.send_mail"]
    with override_settings(MAILOPS={"SUPPRESSION_BYPASS": bypass}), translation.override("de"):
        (warning,) = [m for m in check_suppression_settings() if m.id == "mailops.W041"]
    assert warning.msg.startswith(
        "MAILOPS['SUPPRESSION_BYPASS']: 'myproject.forms.NoSuchForm.send_mail' ist keine "
        "importierbare Funktion"
    )
    assert warning.hint.startswith("Geben Sie eine Funktion oder Methode")
