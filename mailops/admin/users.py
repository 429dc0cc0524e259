"""The "Send test mail to selected users" admin action, for any ``UserAdmin``.

It works like Django's ``delete_selected``: the first POST renders a
confirmation page (who gets mail, who is rejected, which mailer, what text),
the second POST sends through :mod:`mailops.services` and reports with
``message_user``. Add it to a user admin with :class:`SendTestMailAdminMixin`::

    @admin.register(User)
    class UserAdmin(SendTestMailAdminMixin, django.contrib.auth.admin.UserAdmin):
        pass

:class:`UserImportExportMixin` adds django-import-export's import (with its
preview step) and export of test recipients, through
:class:`~mailops.admin.user_resources.UserRecipientResource`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR, ActionLocation
from django.contrib.admin.utils import model_ngettext
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from import_export.results import Result

from mailops import permissions, services
from mailops.admin.batch import batch_url
from mailops.admin.confirmation import (
    SendTestMailPermissionMixin,
    confirmation_page,
    is_confirmed,
    require_permission,
    template_names,
)
from mailops.admin.forms import SendTestMailForm, mailer_defaults
from mailops.admin.import_limits import SafeImportExportMixin
from mailops.admin.links import admin_url, changelist_url
from mailops.admin.user_resources import UserRecipientResource
from mailops.models import MailTrigger
from mailops.recipients import (
    ADDRESS_ANNOTATION,
    HAS_NO_ADDRESS,
    annotate_address,
    with_address,
    without_address,
)
from mailops.redaction import redact
from mailops.suppression.selection import only_suppressed, rejection_subquery

if TYPE_CHECKING:
    _ModelAdminBase = admin.ModelAdmin[Any]
else:
    _ModelAdminBase = object

# Users without an address listed by name on the confirmation page; the
# rest are counted ("and 40 more"), so a huge selection renders quickly.
MAX_LISTED_WITHOUT_ADDRESS = 20


@admin.action(
    permissions=[permissions.SEND_TEST_MAIL_ACTION],
    description=gettext_lazy("Send test mail to selected %(verbose_name_plural)s"),
)
def send_test_mail_action(
    modeladmin: Any, request: HttpRequest, queryset: QuerySet[Any]
) -> TemplateResponse | None:
    """Confirm, then send the test mail to every selected user and log each outcome."""
    require_permission(modeladmin, request, permissions.SEND_TEST_MAIL_ACTION)
    may_ignore = request.user.has_perm(permissions.MANAGE_SUPPRESSION)
    if is_confirmed(request):
        form = SendTestMailForm(request.POST, may_ignore_suppression=may_ignore)
        if form.is_valid():
            _send_and_report(modeladmin, request, queryset, form)
            # None: the admin redirects to the changelist and shows the message.
            return None
    else:
        form = SendTestMailForm(may_ignore_suppression=may_ignore)
    return _confirmation_page(modeladmin, request, queryset, form)


# The action's name in the admin's POST data (``action=send_test_mail``) and in
# ``get_actions``; the function's own name says it is the admin action, not the service.
ACTION_NAME = "send_test_mail"
send_test_mail_action.__name__ = ACTION_NAME


class SendTestMailAdminMixin(SendTestMailPermissionMixin, _ModelAdminBase):
    """Offers the "Send test mail" action to users holding ``mailops.send_test_mail``.

    The action is added in ``get_actions()``, so it appears whatever the
    admin's own ``actions`` list says. Override the confirmation page with
    ``send_test_mail_confirmation_template`` or with a template at
    ``admin/<app>/<model>/send_test_mail_confirmation.html``.
    """

    send_test_mail_confirmation_template: str | list[str] | None = None

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        # Without the permission the action is not offered, and Django's
        # changelist would answer a forged POST of it with the list (200) or
        # "No action selected": refuse it plainly instead.
        if (
            request.method == "POST"
            and request.POST.get("action") == ACTION_NAME
            and not self.has_send_test_mail_permission(request)
        ):
            raise PermissionDenied
        response: HttpResponse = super().changelist_view(request, extra_context)
        return response

    def get_actions(
        self, request: HttpRequest, action_location: ActionLocation = ActionLocation.CHANGE_LIST
    ) -> dict[str, Any]:
        actions: dict[str, Any] = super().get_actions(request, action_location=action_location)
        # Same rules as ModelAdmin.get_actions: no actions at all, or in a popup.
        if self.actions is None or IS_POPUP_VAR in request.GET or ACTION_NAME in actions:
            return actions
        action = self.get_action(send_test_mail_action, action_location)
        if action is not None and self.has_send_test_mail_permission(request):
            actions[action.name] = action
        return actions


class UserImportExportMixin(SafeImportExportMixin):
    """django-import-export on a user admin, limited to test-recipient fields.

    Import creates and updates users, so it needs both the add and change
    permission on the user model; export shows addresses, so it needs the
    view (or change) permission, like the changelist itself.
    """

    resource_classes = [UserRecipientResource]

    def has_import_permission(self, request: HttpRequest) -> bool:
        return bool(self.has_add_permission(request) and self.has_change_permission(request))

    def has_export_permission(self, request: HttpRequest) -> bool:
        return bool(self.has_view_permission(request))

    def process_result(self, result: Result, request: HttpRequest) -> HttpResponse:
        # At the confirm step import-export would log "added" entries for rows
        # that were rolled back and say "Import finished"; say what happened.
        if result.has_errors() or result.has_validation_errors():
            rows = sorted(
                {row.number for row in result.invalid_rows}
                | {row.number for row in result.error_rows}
            )
            where = ", ".join(str(n) for n in rows) or _("the file as a whole")
            messages.error(
                request,
                ngettext(
                    "Import stopped: nothing was imported because of errors in row "
                    "%(rows)s. Fix the file and import it again.",
                    "Import stopped: nothing was imported because of errors in rows "
                    "%(rows)s. Fix the file and import it again.",
                    len(rows) or 1,
                )
                % {"rows": where},
            )
            info = self.get_model_info()
            return HttpResponseRedirect(
                admin_url(self.admin_site, "{}_{}_import".format(*info)) or request.path
            )
        response: HttpResponse = super().process_result(result, request)
        return response


def _confirmation_page(
    modeladmin: Any, request: HttpRequest, queryset: QuerySet[Any], form: SendTestMailForm
) -> TemplateResponse:
    opts = modeladmin.model._meta
    split = _split_by_address(queryset)
    return confirmation_page(
        modeladmin,
        request,
        action_name=ACTION_NAME,
        title=_("Send test mail"),
        templates=template_names(
            modeladmin,
            modeladmin.send_test_mail_confirmation_template,
            "send_test_mail_confirmation",
        ),
        context={
            "form": form,
            "total": split["total"],
            "with_address": split["with_address"],
            "without_address": split["listed"],
            "without_address_count": split["without_address"],
            "without_address_more": split["without_address"] - len(split["listed"]),
            "suppressed": split["suppressed_listed"],
            "suppressed_count": split["suppressed"],
            "suppressed_more": split["suppressed"] - len(split["suppressed_listed"]),
            "will_get_mail": split["with_address"] - split["suppressed"],
            "objects_name": model_ngettext(opts, split["total"]),
            "delivery_notice": _delivery_notice(form, split["with_address"]),
            "confirm_label": _("Yes, send the test mail"),
            "mailer_defaults": mailer_defaults(),
        },
        media=modeladmin.media + form.media,
    )


def _split_by_address(queryset: QuerySet[Any]) -> dict[str, Any]:
    """Counts of users with and without an address, and a few names of the latter.

    Two small queries whatever the selection's size: one aggregate, and at
    most ``MAX_LISTED_WITHOUT_ADDRESS`` rows of (pk, username).
    """
    model = queryset.model
    addressed = annotate_address(queryset)
    missing = without_address(addressed)
    counts = addressed.aggregate(total=Count("pk"), without=Count("pk", filter=HAS_NO_ADDRESS))
    username_field = model.USERNAME_FIELD
    listed = list(
        missing.order_by(username_field, "pk").values_list("pk", username_field)[
            :MAX_LISTED_WITHOUT_ADDRESS
        ]
    )
    return {
        "total": counts["total"],
        "without_address": counts["without"],
        "with_address": counts["total"] - counts["without"],
        "listed": [{"pk": pk, "username": username} for pk, username in listed],
        **_suppressed_in(addressed, username_field),
    }


def _suppressed_in(addressed: QuerySet[Any], username_field: str) -> dict[str, Any]:
    """How many selected users are suppressed, and a few of them with the reason (two queries)."""
    suppressed = only_suppressed(with_address(addressed))
    count = suppressed.count()
    listed = (
        suppressed.annotate(_mailops_why=rejection_subquery())
        .order_by(username_field, "pk")
        .values_list("pk", username_field, ADDRESS_ANNOTATION, "_mailops_why")[
            :MAX_LISTED_WITHOUT_ADDRESS
        ]
        if count
        else []
    )
    return {
        "suppressed": count,
        "suppressed_listed": [
            {"pk": pk, "username": username, "address": address, "why": why}
            for pk, username, address, why in listed
        ],
    }


def _delivery_notice(form: SendTestMailForm, count: int) -> str:
    """What the operator should know before confirming (blocking send, daily quota)."""
    alias = form.data.get("mailer") if form.is_bound else form.initial.get("mailer")
    if not count:
        return ""
    try:
        return services.plan_delivery(count, using=alias).notice()
    except ImproperlyConfigured:
        # An unknown mailer is a form error on this page; nothing to plan.
        return ""


def _send_and_report(
    modeladmin: Any, request: HttpRequest, queryset: QuerySet[Any], form: SendTestMailForm
) -> None:
    mailer = form.cleaned_data["mailer"]
    overrides = form.message_overrides()
    try:
        # The database writes one row per selected user (INSERT ... SELECT):
        # no user object is loaded, however large the selection.
        summary = services.send_test_mail_to_users(
            queryset,
            using=mailer,
            trigger=MailTrigger.ADMIN_ACTION,
            triggered_by=request.user,
            subject=overrides["subject"],
            body=overrides["body"],
            ignore_suppression=form.ignores_suppression,
        )
    except (ImproperlyConfigured, ValueError) as error:
        # A mailer misconfigured since the page was shown: raised before any
        # row is written, so there is nothing in the log to point to.
        modeladmin.message_user(
            request,
            _("Nothing was sent: %(error)s") % {"error": redact(str(error))},
            messages.ERROR,
        )
        return
    modeladmin.message_user(
        request, _summary_message(modeladmin, request, summary), _summary_level(summary)
    )


def _summary_message(
    modeladmin: Any, request: HttpRequest, summary: services.SendSummary
) -> SafeString:
    parts = [
        _("%(n)d sent") % {"n": summary.sent},
        _("%(n)d failed") % {"n": summary.failed},
        _("%(n)d rejected (no email address)") % {"n": summary.rejected - summary.suppressed},
    ]
    if summary.suppressed:
        parts.append(_("%(n)d suppressed (not sent)") % {"n": summary.suppressed})
    if summary.queued:
        parts.append(_("%(n)d queued for the task worker") % {"n": summary.queued})
    text = _("Test mail via %(mailer)s: %(counts)s.") % {
        "mailer": summary.mailer,
        "counts": ", ".join(parts),
    }
    if summary.worker_error:
        text += " " + summary.worker_notice
    url = _batch_url(modeladmin, request, summary)
    if url is None:
        return format_html("{} {}", text, _("Batch %(batch)s.") % {"batch": summary.batch_id})
    link = format_html('{} <a href="{}">{}</a>', text, url, _("See this batch in the mail log."))
    assert summary.batch_id is not None  # _batch_url gives no URL without one
    progress_url = batch_url(modeladmin.admin_site.name, summary.batch_id)
    if progress_url is None:
        return link
    # A batch handed to the worker is still going: its page follows it live.
    label = _("Follow its progress.") if summary.queued else _("Batch overview.")
    return format_html(
        '{} <a href="{}" class="mailops-progress-link">{}</a>', link, progress_url, label
    )


def _summary_level(summary: services.SendSummary) -> int:
    if summary.worker_error:
        return messages.WARNING
    if summary.failed and not summary.sent and not summary.queued:
        return messages.ERROR
    if summary.failed or summary.rejected or not (summary.sent or summary.queued):
        return messages.WARNING
    return messages.SUCCESS


def _batch_url(modeladmin: Any, request: HttpRequest, summary: services.SendSummary) -> str | None:
    """The mail log filtered to this batch, if the operator may open it."""
    user: Any = request.user
    if summary.batch_id is None or not permissions.has_any(user, permissions.READ_MAILLOG):
        return None
    # None when the MailLog admin is not registered on this site.
    return changelist_url(modeladmin.admin_site, batch_id=summary.batch_id)
