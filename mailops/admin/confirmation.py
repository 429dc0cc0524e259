"""One way to confirm an admin action, the ``delete_selected`` way.

The first POST of an action renders an intermediate page that re-posts the
selection with ``post=yes``; the second POST does the work. Both steps check
the permission (``admin.action(permissions=...)`` only decides which actions
are offered), and every confirmation page has the same hidden fields and the
same "No, take me back" link, to the list the action was chosen on.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin import helpers
from django.contrib.admin.options import ActionLocation
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse

from mailops import permissions


class SendTestMailPermissionMixin:
    """``has_send_test_mail_permission``, for the admins whose actions send mail."""

    def has_send_test_mail_permission(self, request: HttpRequest) -> bool:
        user: Any = request.user
        return bool(user.has_perm(permissions.SEND_TEST_MAIL))


def require_permission(modeladmin: Any, request: HttpRequest, permission: str) -> None:
    """Refuse unless ``modeladmin.has_<permission>_permission(request)``."""
    if not getattr(modeladmin, f"has_{permission}_permission")(request):
        raise PermissionDenied


def is_confirmed(request: HttpRequest) -> bool:
    """Whether this POST is the confirmation page's "Yes"."""
    return bool(request.POST.get("post"))


def template_names(modeladmin: Any, override: str | list[str] | None, name: str) -> Any:
    """``override``, else the model's, the app's and mailops' own ``<name>.html``."""
    if override:
        return override
    opts = modeladmin.model._meta
    return [
        f"admin/{opts.app_label}/{opts.model_name}/{name}.html",
        f"admin/{opts.app_label}/{name}.html",
        f"admin/mailops/{name}.html",
    ]


def confirmation_page(
    modeladmin: Any,
    request: HttpRequest,
    *,
    action_name: str,
    title: Any,
    templates: Any,
    context: dict[str, Any],
    media: Any = None,
) -> TemplateResponse:
    """The intermediate page of ``action_name``, with the selection to re-post."""
    opts = modeladmin.model._meta
    select_across = bool(
        forms.BooleanField(required=False).to_python(request.POST.get("select_across"))
    )
    # On an entry's page the action form is prefixed (Django 6.1 change-form actions).
    prefixed = f"{ActionLocation.CHANGE_FORM.value}-action"
    page = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "subtitle": None,
        "opts": opts,
        "app_label": opts.app_label,
        # The ids of the page the action was chosen on. With select_across the
        # admin re-derives the whole filtered selection from the URL on confirm.
        "selected_ids": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        # The name the resend page used before (templates overridden by a host).
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "select_across": select_across,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "action_name": action_name,
        "action_field": prefixed if prefixed in request.POST else "action",
        # The list this came from, with its filters: "take me back".
        "cancel_url": request.get_full_path(),
        "media": media if media is not None else modeladmin.media,
        **context,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, templates, page)
