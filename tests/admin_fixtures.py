"""Helpers for the admin tests: reading admin pages and messages like a browser does."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from django.contrib.messages import get_messages
from django.urls import reverse

USER_CHANGELIST = "admin:auth_user_changelist"


def changelist_url(query: str = "") -> str:
    url = reverse(USER_CHANGELIST)
    return f"{url}?{query}" if query else url


class _FormReader(HTMLParser):
    """Collects what a browser would submit from one ``<form id=...>``."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.fields: list[tuple[str, str]] = []
        self._textarea: str | None = None
        self._textarea_text: list[str] = []
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag == "form" and attr.get("id") == self.form_id:
            self.inside = True
        if not self.inside:
            return
        if tag == "input" and attr.get("name") and attr.get("type") != "submit":
            if attr.get("type") in ("checkbox", "radio") and "checked" not in attr:
                return
            self.fields.append((attr["name"], attr.get("value", "")))
        elif tag == "textarea":
            self._textarea, self._textarea_text = attr["name"], []
        elif tag == "select":
            self._select, self._options = attr["name"], []
        elif tag == "option" and self._select is not None:
            self._options.append((attr.get("value", ""), "selected" in attr))

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea_text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.inside:
            self.inside = False
        elif tag == "textarea" and self._textarea is not None:
            # The HTML parser drops one newline right after <textarea>.
            text = "".join(self._textarea_text).removeprefix("\n")
            self.fields.append((self._textarea, text))
            self._textarea = None
        elif tag == "select" and self._select is not None:
            chosen = [v for v, selected in self._options if selected] or [self._options[0][0]]
            self.fields.append((self._select, chosen[0]))
            self._select = None


def form_fields(html: str, form_id: str) -> dict[str, list[str]]:
    """The fields a browser would submit from the form, as ``{name: [values]}``."""
    reader = _FormReader(form_id)
    reader.feed(html)
    fields: dict[str, list[str]] = {}
    for name, value in reader.fields:
        fields.setdefault(name, []).append(value)
    assert fields, f"no form #{form_id} on the page"
    return fields


def shown_messages(response: Any) -> list[tuple[str, str]]:
    """``(level tag, text)`` of the messages the page shows (or is about to)."""
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]
