"""Moved to :mod:`mailops.exports.resources`; importers of this path keep working."""

from mailops.exports.resources import (
    EXPORT_CHUNK_SIZE,
    EXPORT_COLUMNS,
    EXPORT_FORMATS,
    FORMULA_PREFIXES,
    MailLogResource,
    SpreadsheetSafeCSV,
    SpreadsheetSafeXLSX,
    iter_csv,
    spreadsheet_safe,
)

__all__ = [
    "EXPORT_CHUNK_SIZE",
    "EXPORT_COLUMNS",
    "EXPORT_FORMATS",
    "FORMULA_PREFIXES",
    "MailLogResource",
    "SpreadsheetSafeCSV",
    "SpreadsheetSafeXLSX",
    "iter_csv",
    "spreadsheet_safe",
]
