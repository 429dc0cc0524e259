"""Import and export of test recipients (users) with django-import-export.

Only ``username, email, first_name, last_name, is_staff, is_active`` cross
the boundary. An import never sets a password or superuser status (new
users get an unusable password), and it is all or nothing: one bad row
(invalid address, duplicate or missing username) stops the whole file, in
the preview and again at the confirm step.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from import_export import fields, resources, widgets

User = get_user_model()

# The columns, in file order. Their names are fixed; the model attributes
# follow the user model's USERNAME_FIELD and EMAIL_FIELD.
COLUMNS = ("username", "email", "first_name", "last_name", "is_staff", "is_active")


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
        raise ValueError(f"Enter yes or no (true/false, 1/0), not {value!r}.")


def _flag(name: str) -> fields.Field:
    return fields.Field(
        attribute=name,
        column_name=name,
        widget=StrictBooleanWidget(),
        # An empty cell keeps the current value instead of writing NULL.
        saves_null_values=False,
    )


class UserRecipientResource(resources.ModelResource):
    """Users as test recipients: who they are and where mail goes, nothing more."""

    username = fields.Field(
        attribute=User.USERNAME_FIELD, column_name="username", widget=TrimmedCharWidget()
    )
    email = fields.Field(
        attribute=User.get_email_field_name(), column_name="email", widget=TrimmedCharWidget()
    )
    first_name = fields.Field(
        attribute="first_name", column_name="first_name", widget=TrimmedCharWidget()
    )
    last_name = fields.Field(
        attribute="last_name", column_name="last_name", widget=TrimmedCharWidget()
    )
    is_staff = _flag("is_staff")
    is_active = _flag("is_active")

    class Meta:
        model = User
        fields = COLUMNS
        import_order = COLUMNS
        export_order = COLUMNS
        import_id_fields = ("username",)
        # Model validation: a missing username, an invalid address, lengths.
        clean_model_instances = True
        # All or nothing: see import_data().
        use_transactions = True
        skip_unchanged = True
        report_skipped = True
        name = "Users (test recipients)"

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
        raw = row.get("username")
        username = "" if raw is None else str(raw).strip()
        if not username:
            return  # model validation reports the missing username
        number = kwargs.get("row_number", 0)
        key = username.casefold()
        first = self._seen_usernames.setdefault(key, number)
        if first != number:
            raise ValidationError(
                {"username": f"Duplicate username {username!r}: row {first} already has it."}
            )
        self._check_existing(username, kwargs.get("user"))

    def _check_existing(self, username: str, importing_user: Any) -> None:
        """Refuse look-alike usernames and changes to superusers by non-superusers."""
        matches = list(
            User._default_manager.filter(
                **{f"{User.USERNAME_FIELD}__iexact": username}
            ).values_list(User.USERNAME_FIELD, "is_superuser")[:2]
        )
        exact = [is_superuser for name, is_superuser in matches if name == username]
        if matches and not exact:
            # Django's user creation form refuses usernames that differ only in case.
            raise ValidationError(
                {"username": f"A user named {matches[0][0]!r} already exists (differs in case)."}
            )
        if exact and exact[0] and not getattr(importing_user, "is_superuser", False):
            raise ValidationError(
                {"username": f"{username!r} is a superuser; only a superuser may change it."}
            )

    def after_init_instance(self, instance: Any, new: bool, row: Any, **kwargs: Any) -> None:
        super().after_init_instance(instance, new, row, **kwargs)
        if new:
            # Set before validation: the password column may not be blank. An
            # imported user signs in only after a password reset.
            instance.set_unusable_password()
