"""The host's URLs plus Django's default ``admin.site`` at /admin/: two sites at once.

Pages reached through /console/ must still link only into /console/.
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from tests.host.urls import urlpatterns as host_urlpatterns

urlpatterns = [*host_urlpatterns, path("admin/", admin.site.urls)]
