"""The suppression list in the admin: search, filter by reason, add, remove, import, export.

Seeing the list needs ``view_suppression``; adding, editing, removing and
importing need ``manage_suppression`` (mailops' own permission: Django's
add/change/delete permissions of the model are not used). Removing is an
action with a confirmation page, the ``delete_selected`` way; export uses
the same spreadsheet-safe formats as the mail log, import the same limits
as the user import (``IMPORT_MAX_BYTES``, ``IMPORT_MAX_ROWS``).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import ActionLocation
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from import_export import fields, resources

from mailops import permissions
from mailops.admin.confirmation import (
    confirmation_page,
    is_confirmed,
    require_permission,
    template_names,
)
from mailops.admin.import_limits import LimitedCSV, LimitedXLSX, SafeImportExportMixin
from mailops.models import Suppression
from mailops.recipients import check_address
from mailops.suppression.models import SuppressionReason, normalise_address

# The columns of an export, and what an import reads (address is the key).
COLUMNS = ("address", "reason", "detail", "created_at", "expires_at")


class SuppressionResource(resources.ModelResource):
    """One row per entry; an import adds or updates entries by address."""

    reason = fields.Field(attribute="reason", column_name="reason")

    class Meta:
        model = Suppression
        fields = COLUMNS
        export_order = COLUMNS
        import_id_fields = ("address",)
        clean_model_instances = True
        skip_unchanged = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._importing_user: Any = None

    def import_data(self, dataset: Any, *args: Any, **kwargs: Any) -> Any:
        # All or nothing, as the user import: one bad row stops the file.
        kwargs["use_transactions"] = True
        kwargs["rollback_on_validation_errors"] = True
        return super().import_data(dataset, *args, **kwargs)

    def before_import_row(self, row: Any, **kwargs: Any) -> None:
        super().before_import_row(row, **kwargs)
        self._importing_user = kwargs.get("user")
        # Keyed as the list keys it, so "Dead@Example.com" updates "dead@example.com".
        row["address"] = normalise_address(str(row.get("address") or ""))
        problem = check_address(row["address"])
        if problem:
            raise ValidationError({"address": problem})
        reason = str(row.get("reason") or "").strip() or SuppressionReason.MANUAL
        if reason not in SuppressionReason.values:
            raise ValidationError(
                {
                    "reason": _("Unknown reason %(reason)r; use one of: %(choices)s.")
                    % {"reason": reason, "choices": ", ".join(SuppressionReason.values)}
                }
            )
        row["reason"] = reason
        for column in ("detail", "created_at", "expires_at"):
            if column in row and row[column] in (None, ""):
                # An empty cell keeps the default (now, no expiry, no detail).
                del row[column]

    def before_save_instance(self, instance: Suppression, row: Any, **kwargs: Any) -> None:
        super().before_save_instance(instance, row, **kwargs)
        if instance.pk is None and getattr(self._importing_user, "pk", None):
            instance.added_by = self._importing_user


class SuppressionForm(forms.ModelForm):
    """The add/change form: the address is checked and keyed as the list keys it."""

    class Meta:
        model = Suppression
        fields = ("address", "reason", "detail", "expires_at")

    def clean_address(self) -> str:
        address = normalise_address(self.cleaned_data["address"])
        error = check_address(address)
        if error:
            raise ValidationError(error)
        return address


class SuppressionCSV(LimitedCSV):
    """The import's CSV: the same limits, a header example of this list."""

    example_header = "address,reason,detail,..."


@admin.action(
    permissions=["manage_suppression"],
    description=gettext_lazy("Remove selected addresses from the suppression list"),
)
def unsuppress_selected(
    modeladmin: SuppressionAdmin, request: HttpRequest, queryset: QuerySet[Suppression]
) -> TemplateResponse | None:
    """Confirm, then take the selected addresses off the list (mail goes to them again)."""
    require_permission(modeladmin, request, "manage_suppression")
    if is_confirmed(request):
        count = queryset.count()
        queryset.delete()
        modeladmin.message_user(
            request,
            ngettext(
                "%(n)d address removed from the suppression list; mail goes to it again.",
                "%(n)d addresses removed from the suppression list; mail goes to them again.",
                count,
            )
            % {"n": count},
            messages.SUCCESS,
        )
        return None
    count = queryset.count()
    return confirmation_page(
        modeladmin,
        request,
        action_name="unsuppress_selected",
        title=_("Remove from the suppression list"),
        templates=template_names(
            modeladmin, modeladmin.unsuppress_confirmation_template, "unsuppress_confirmation"
        ),
        context={
            "count": count,
            # A few by name; a huge selection is counted, not listed.
            "entries": list(queryset.order_by("address")[:50]),
            "more": max(0, count - 50),
            "confirm_label": _("Yes, remove them"),
        },
    )


@admin.register(Suppression)
class SuppressionAdmin(SafeImportExportMixin, admin.ModelAdmin):
    """The suppression list. Register it on a project's own site like ``MailLogAdmin``."""

    list_display = ("address", "reason", "detail", "created_at", "expires_at", "added_by")
    list_filter = ("reason", "created_at")
    # Prefix search on the (unique, indexed) address; contains-search on the detail.
    search_fields = ("^address", "detail")
    ordering = ("-created_at", "-id")
    date_hierarchy = None
    list_select_related = ("added_by",)
    raw_id_fields = ("source_log", "source_event", "added_by")
    readonly_fields = ("created_at", "source_log", "source_event", "added_by")
    form = SuppressionForm
    fields = (
        "address",
        "reason",
        "detail",
        "expires_at",
        "created_at",
        "source_log",
        "source_event",
        "added_by",
    )
    actions = [unsuppress_selected]
    unsuppress_confirmation_template: str | list[str] | None = None

    resource_classes = [SuppressionResource]
    import_formats = [SuppressionCSV, LimitedXLSX]

    # --- permissions: one permission manages the list ----------------------------

    def has_manage_suppression_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(permissions.MANAGE_SUPPRESSION))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(
            request.user.has_perm(permissions.VIEW_SUPPRESSION)
            or self.has_manage_suppression_permission(request)
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_manage_suppression_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_manage_suppression_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_manage_suppression_permission(request)

    def has_import_permission(self, request: HttpRequest) -> bool:
        return self.has_manage_suppression_permission(request)

    def has_export_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def get_actions(
        self, request: HttpRequest, action_location: ActionLocation = ActionLocation.CHANGE_LIST
    ) -> dict[str, Any]:
        actions: dict[str, Any] = super().get_actions(request, action_location=action_location)
        # Removing goes through the confirmation that says what it means.
        actions.pop("delete_selected", None)
        return actions

    def save_model(self, request: HttpRequest, obj: Suppression, form: Any, change: bool) -> None:
        if not change:
            user: Any = request.user
            obj.added_by = user if getattr(user, "pk", None) else None
            obj.reason = obj.reason or SuppressionReason.MANUAL
        super().save_model(request, obj, form, change)
