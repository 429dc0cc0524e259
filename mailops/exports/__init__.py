"""Exports of the mail log: the columns (``resources``) and PostgreSQL's fast CSV (``copy_csv``).

The admin's export, its streamed CSV and ``manage.py exportmaillog`` all read
from here, so every way out of the log has the same columns and redaction.
"""
