"""What an operator may choose before a test mail goes out: mailer, subject, message.

Bad input (an unknown mailer, an empty or multi-line subject) is a form
error on the page that asked for it, never an exception from the service.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from mailops.conf import get_setting
from mailops.mailers.info import mailer_info
from mailops.mailers.registry import mailer_aliases
from mailops.models import MailLog
from mailops.sending.composition import DEFAULT_BODY, default_subject, site_name

# The subject column's size; RFC 5322 allows 998 characters per header line.
SUBJECT_MAX_LENGTH: int = MailLog._meta.get_field("subject").max_length or 998
# A test mail needs no more; a cap keeps a pasted file out of every log row.
BODY_MAX_LENGTH = 10_000


class MailTextField(forms.CharField):
    """A multi-line text whose line endings do not count as an edit.

    Browsers submit textareas with CRLF; the hidden initial copy may differ
    only in that, which must not turn an untouched default into an override.
    """

    def has_changed(self, initial: Any, data: Any) -> bool:
        return super().has_changed(_lf(initial), _lf(data))


def _lf(value: Any) -> Any:
    return value.replace("\r\n", "\n") if isinstance(value, str) else value


def mailer_choices() -> list[tuple[str, str]]:
    """The configured ``MAILERS`` aliases, each with what it is.

    ``default — console (prints mail)``, ``gmail — SMTP smtp.gmail.com:587,
    STARTTLS``, ``postmark — Postmark API``: never a credential.
    """
    return [
        (alias, f"{alias} — {mailer_info(alias).human_description()}")
        for alias in sorted(mailer_aliases())
    ]


class SendTestMailForm(forms.Form):
    """The confirmation page's choices for the admin action.

    ``subject`` and ``body`` carry their initial (default) values in hidden
    inputs, so :meth:`message_overrides` can tell an edited text from the
    untouched default: an untouched one is recomposed by the service for the
    mailer finally chosen, with the time of sending.
    """

    class Media:
        # Switching the mailer rewrites untouched subject/message texts for it.
        js = ["mailops/send_test_mail.js"]

    mailer = forms.ChoiceField(label=_("Mailer"))
    subject = forms.CharField(
        label=_("Subject"),
        max_length=SUBJECT_MAX_LENGTH,
        show_hidden_initial=True,
        widget=forms.TextInput(attrs={"class": "vLargeTextField"}),
    )
    body = MailTextField(
        label=_("Message"),
        max_length=BODY_MAX_LENGTH,
        show_hidden_initial=True,
        # Keep the operator's leading/trailing blank lines: this is mail text.
        strip=False,
        widget=forms.Textarea(attrs={"rows": 10, "cols": 80, "class": "vLargeTextField"}),
    )

    ignore_suppression = forms.BooleanField(
        label=_("Send to suppressed addresses too"),
        required=False,
        help_text=_(
            "Addresses on the suppression list are otherwise logged as rejected and get no mail."
        ),
    )

    def __init__(self, *args: Any, may_ignore_suppression: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("initial", initial_message())
        super().__init__(*args, **kwargs)
        if not may_ignore_suppression:
            # Only users who manage the list may override it (a forged field is ignored).
            del self.fields["ignore_suppression"]
        mailer_field = self.fields["mailer"]
        assert isinstance(mailer_field, forms.ChoiceField)
        mailer_field.choices = mailer_choices()
        if not mailer_field.choices:
            mailer_field.help_text = _("No mailers are configured (settings.MAILERS is empty).")

    def clean_subject(self) -> str:
        subject: str = self.cleaned_data["subject"]
        if "\r" in subject or "\n" in subject:
            raise forms.ValidationError(
                _("The subject must be a single line."), code="subject_line_break"
            )
        return subject

    def clean_body(self) -> str:
        body: str = self.cleaned_data["body"]
        if not body.strip():
            raise forms.ValidationError(_("The message must not be empty."), code="required")
        return body

    def message_overrides(self) -> dict[str, str | None]:
        """``subject``/``body`` for the service: ``None`` where the default was left as is."""
        changed = set(self.changed_data)
        return {
            "subject": self.cleaned_data["subject"] if "subject" in changed else None,
            "body": self.cleaned_data["body"] if "body" in changed else None,
        }

    @property
    def ignores_suppression(self) -> bool:
        """The operator (holding the permission) asked to send to suppressed addresses."""
        return bool(self.cleaned_data.get("ignore_suppression"))


def initial_message() -> dict[str, str]:
    """The defaults the confirmation page starts from (for the default mailer)."""
    alias = str(get_setting("DEFAULT_MAILER"))
    return {"mailer": alias, **page_texts(alias)}


def page_texts(alias: str) -> dict[str, str]:
    """The default subject and message as the page shows them for ``alias``.

    The page cannot know when the mail will go out, so its "Sent:" line says
    so; an untouched default is composed again when sending, with the real time.
    """
    body = DEFAULT_BODY.format(
        site=site_name(), mailer=alias, time=gettext("(the time of sending)")
    )
    return {"subject": default_subject(alias), "body": body}


def mailer_defaults() -> dict[str, dict[str, str]]:
    """``page_texts`` for every configured mailer (the page's script switches between them)."""
    return {alias: page_texts(alias) for alias in mailer_aliases()}
