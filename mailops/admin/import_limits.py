"""Limits and plain-language errors for mailops' imports (django-import-export).

An import is read whole into memory and checked row by row inside one
request: a 20,000-row file held a request for 86 s. Files larger than
``MAILOPS["IMPORT_MAX_BYTES"]`` are refused by the upload form, files with
more rows than ``MAILOPS["IMPORT_MAX_ROWS"]`` when they are read, each with a
form error that says the limit and the setting. A file that cannot be read
(wrong format, semicolons instead of commas) gets a sentence that says what
to change, never a traceback.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.template.defaultfilters import filesizeformat
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from import_export.admin import ImportExportMixin
from import_export.formats import base_formats
from import_export.forms import ImportForm

from mailops.admin.resources import SpreadsheetSafeCSV, SpreadsheetSafeXLSX
from mailops.conf import get_setting

# Separators people's spreadsheets use instead of commas (Excel in many
# locales writes ";").
OTHER_SEPARATORS = {";": _("semicolons"), "\t": _("tabs"), "|": _("vertical bars")}


class ImportRefused(ValueError):
    """The file is not imported; ``str()`` is the sentence shown on the form."""


def check_row_count(rows: int) -> None:
    """Refuse a file with more data rows than ``MAILOPS["IMPORT_MAX_ROWS"]``."""
    limit: int = get_setting("IMPORT_MAX_ROWS")
    if rows > limit:
        raise ImportRefused(
            _(
                "The file has %(rows)s rows; an import takes at most %(limit)s "
                '(MAILOPS["IMPORT_MAX_ROWS"]). Split it into smaller files.'
            )
            # Grouped the way the active language writes thousands (20,000; 20.000).
            % {
                "rows": number_format(rows, force_grouping=True),
                "limit": number_format(limit, force_grouping=True),
            }
        )


class LimitedCSV(SpreadsheetSafeCSV):
    """CSV that refuses too many rows and a file separated by something other than commas."""

    # How the first line of a good file starts (the message names it).
    example_header = "username,email,..."

    def create_dataset(self, in_stream: Any, **kwargs: Any) -> Any:
        dataset = super().create_dataset(in_stream, **kwargs)
        headers = dataset.headers or []
        if len(headers) == 1:
            for separator, name in OTHER_SEPARATORS.items():
                if separator in str(headers[0]):
                    raise ImportRefused(
                        _(
                            "The columns are separated by %(name)s; save the file as "
                            "comma-separated CSV (its first line reads like "
                            "%(header)s)."
                        )
                        % {"name": name, "header": self.example_header}
                    )
        check_row_count(len(dataset))
        return dataset


class LimitedXLSX(SpreadsheetSafeXLSX):
    """XLSX (first sheet) that refuses too many rows."""

    def create_dataset(self, in_stream: Any) -> Any:
        dataset = super().create_dataset(in_stream)
        check_row_count(len(dataset))
        return dataset


class LimitedImportForm(ImportForm):
    """import-export's upload form, refusing files over ``MAILOPS["IMPORT_MAX_BYTES"]``."""

    def clean_import_file(self) -> Any:
        upload = self.cleaned_data["import_file"]
        limit: int = get_setting("IMPORT_MAX_BYTES")
        if upload is not None and upload.size > limit:
            raise forms.ValidationError(
                _(
                    "The file is %(size)s; an import takes at most %(limit)s "
                    '(MAILOPS["IMPORT_MAX_BYTES"]). Split it into smaller files.'
                )
                % {"size": filesizeformat(upload.size), "limit": filesizeformat(limit)}
            )
        return upload


def read_failure_message(error: BaseException, file_format: type[base_formats.Format]) -> str:
    """What the form says when the file cannot be read as ``file_format``."""
    if isinstance(error, ImportRefused):
        return str(error)
    title = getattr(file_format(), "get_title", lambda: "")()
    return _(
        "The file could not be read as %(format)s. Choose the format that matches "
        "the file (CSV: UTF-8 text, comma-separated, a header line first)."
    ) % {"format": str(title).upper() or _("the chosen format")}


class SafeImportExportMixin(ImportExportMixin):
    """django-import-export as every mailops import and export uses it.

    The admin's own breadcrumbs on import-export's pages; the size and row
    limits on the upload (``IMPORT_MAX_BYTES``, ``IMPORT_MAX_ROWS``); exports
    whose cells can never start a spreadsheet formula (what is exported came
    from outside); and a file that cannot be read answered in a sentence.
    Subclasses set ``resource_classes`` and may narrow ``import_formats``.
    """

    import_template_name = "admin/mailops/import_export/import.html"
    export_template_name = "admin/mailops/import_export/export.html"
    import_form_class = LimitedImportForm
    import_formats = [LimitedCSV, LimitedXLSX]
    export_formats = [SpreadsheetSafeCSV, SpreadsheetSafeXLSX]

    def add_data_read_fail_error_to_form(self, form: Any, e: Exception) -> None:
        # import-export says "'Error' encountered while trying to read file";
        # say what is wrong and what to do instead.
        file_format = self.get_import_formats()[int(form.cleaned_data["format"])]
        form.add_error("import_file", read_failure_message(e, file_format))
