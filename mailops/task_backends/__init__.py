"""django.tasks backends that mailops ships (only Celery so far)."""
