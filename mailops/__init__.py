"""mailops: prove that a Django site's outgoing mail works, and keep the audit trail."""

__version__ = "0.1.0"
