"""Import and export of test recipients (users) with django-import-export.

Only who a user is and where mail goes cross the boundary: the columns are
the user model's ``USERNAME_FIELD`` and ``EMAIL_FIELD`` (``username`` and
``email`` for Django's own user), then whichever of ``first_name``,
``last_name``, ``is_staff``, ``is_active`` the model has as fields. An
import never sets a password or superuser status (new users get an
unusable password), and it is all or nothing: one bad row (invalid
address, duplicate or missing username) stops the whole file, in the
preview and again at the confirm step.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from import_export import fields, resources, widgets

from mailops.recipients import has_field

User = get_user_model()

# Columns exported and imported when the user model has them as fields.
OPTIONAL_TEXT_COLUMNS = ("first_name", "last_name")
OPTIONAL_FLAG_COLUMNS = ("is_staff", "is_active")


def recipient_columns(model: Any) -> tuple[str, ...]:
    """The file's columns for ``model``, in file order."""
    optional = OPTIONAL_TEXT_COLUMNS + OPTIONAL_FLAG_COLUMNS
    return (
        model.USERNAME_FIELD,
        model.get_email_field_name(),
        *(name for name in optional if has_field(model, name)),
    )


COLUMNS = recipient_columns(User)
USERNAME_COLUMN = User.USERNAME_FIELD


class TrimmedCharWidget(widgets.CharWidget):
    """Text with surrounding spaces removed: " alice " is the user "alice"."""

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> Any:
        cleaned = super().clean(value, row, **kwargs)
        return cleaned.strip() if isinstance(cleaned, str) else cleaned


class StrictBooleanWidget(widgets.BooleanWidget):
    """yes/no, true/false, 1/0 (any case); anything else is a row error.

    import-export's own widget reads every unknown value as ``False``, so a
    typo such as "ja" would quietly deactivate a user. An empty cell is
    ``None``, which leaves the user's current value (or the default) alone.
    """

    TRUE_TEXT = frozenset({"1", "true", "yes", "y", "on"})
    FALSE_TEXT = frozenset({"0", "false", "no", "n", "off"})
    EMPTY_TEXT = frozenset({"", "null", "none"})

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int | float) and value in (0, 1):
            # Spreadsheet cells arrive as numbers.
            return bool(value)
        text = str(value).strip().lower()
        if text in self.EMPTY_TEXT:
            return None
        if text in self.TRUE_TEXT:
            return True
        if text in self.FALSE_TEXT:
            return False
        raise ValueError(_("Enter yes or no (true/false, 1/0), not %(value)r.") % {"value": value})


def _flag(name: str) -> fields.Field:
    return fields.Field(
        attribute=name,
        column_name=name,
        widget=StrictBooleanWidget(),
        # An empty cell keeps the current value instead of writing NULL.
        saves_null_values=False,
    )


def _text(name: str) -> fields.Field:
    return fields.Field(attribute=name, column_name=name, widget=TrimmedCharWidget())


def _declared_fields(model: Any) -> dict[str, fields.Field]:
    columns = recipient_columns(model)
    return {name: _flag(name) if name in OPTIONAL_FLAG_COLUMNS else _text(name) for name in columns}


class RecipientResourceBase(resources.ModelResource):
    """The behaviour of :data:`UserRecipientResource`, for any user model."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Username (casefolded) -> the file row that first used it.
        self._seen_usernames: dict[str, int] = {}

    def import_data(self, dataset: Any, *args: Any, **kwargs: Any) -> Any:
        """Import in one transaction that is rolled back if any row is invalid.

        The admin's confirm step calls this without
        ``rollback_on_validation_errors``, which would save the good rows
        and drop the bad ones; forcing it keeps an import all or nothing.
        """
        kwargs["use_transactions"] = True
        kwargs["rollback_on_validation_errors"] = True
        return super().import_data(dataset, *args, **kwargs)

    def before_import(self, dataset: Any, **kwargs: Any) -> None:
        self._seen_usernames = {}
        super().before_import(dataset, **kwargs)

    def before_import_row(self, row: Any, **kwargs: Any) -> None:
        super().before_import_row(row, **kwargs)
        raw = row.get(USERNAME_COLUMN)
        username = "" if raw is None else str(raw).strip()
        if not username:
            return  # model validation reports the missing username
        number = kwargs.get("row_number", 0)
        key = username.casefold()
        first = self._seen_usernames.setdefault(key, number)
        if first != number:
            raise ValidationError(
                {
                    USERNAME_COLUMN: _(
                        "Duplicate %(column)s %(username)r: row %(row)s already has it."
                    )
                    % {"column": USERNAME_COLUMN, "username": username, "row": first}
                }
            )
        self._check_existing(username, kwargs.get("user"))

    def _check_existing(self, username: str, importing_user: Any) -> None:
        """Refuse look-alike usernames and changes to superusers by non-superusers."""
        # A user model without is_superuser (no PermissionsMixin) has no superusers.
        columns = [USERNAME_COLUMN, *(["is_superuser"] if has_field(User, "is_superuser") else [])]
        found = User._default_manager.filter(**{f"{USERNAME_COLUMN}__iexact": username})
        matches = [(row[0], row[-1] is True) for row in found.values_list(*columns)[:2]]
        exact = [is_superuser for name, is_superuser in matches if name == username]
        if matches and not exact:
            # Django's user creation form refuses usernames that differ only in case.
            raise ValidationError(
                {
                    USERNAME_COLUMN: _(
                        "A user named %(username)r already exists (differs in case)."
                    )
                    % {"username": matches[0][0]}
                }
            )
        if exact and exact[0] and not getattr(importing_user, "is_superuser", False):
            raise ValidationError(
                {
                    USERNAME_COLUMN: _(
                        "%(username)r is a superuser; only a superuser may change it."
                    )
                    % {"username": username}
                }
            )

    def after_init_instance(self, instance: Any, new: bool, row: Any, **kwargs: Any) -> None:
        super().after_init_instance(instance, new, row, **kwargs)
        if new:
            # Set before validation: the password column may not be blank. An
            # imported user signs in only after a password reset.
            instance.set_unusable_password()


class _Meta:
    model = User
    fields = COLUMNS
    import_order = COLUMNS
    export_order = COLUMNS
    import_id_fields = (USERNAME_COLUMN,)
    # Model validation: a missing username, an invalid address, lengths.
    clean_model_instances = True
    # All or nothing: see import_data().
    use_transactions = True
    skip_unchanged = True
    report_skipped = True
    name = gettext_lazy("Users (test recipients)")


# Built for the project's user model: its declared fields follow the model's
# USERNAME_FIELD, EMAIL_FIELD and optional name/flag fields.
UserRecipientResource: type[RecipientResourceBase] = type(
    "UserRecipientResource",
    (RecipientResourceBase,),
    {**_declared_fields(User), "Meta": _Meta, "__module__": __name__},
)
