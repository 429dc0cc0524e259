"""mailops: prove that a Django site's outgoing mail works, and keep the audit trail."""

from importlib.metadata import PackageNotFoundError, version

try:
    # The one version source is the package metadata (pyproject.toml's version).
    __version__ = version("django-mailops")
except PackageNotFoundError:  # running from a checkout that was not installed
    __version__ = "0+unknown"
