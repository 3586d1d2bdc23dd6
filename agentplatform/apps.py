from pathlib import Path

from django.apps import AppConfig, apps
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.db import connections
from django.db.models.signals import post_migrate, pre_migrate

# Apps whose models the admin does not show: django-celery-beat's rows are written by the
# agents' schedules (edited under Agents > Schedules); edited directly, they would drift.
HIDDEN_ADMIN_APPS = ("django_celery_beat",)


class PlatformAdminConfig(AdminConfig):
    """The Django admin, on a site that requires a verified second factor."""

    default_site = "agentplatform.admin_site.PlatformAdminSite"

    def ready(self) -> None:
        super().ready()  # registers every app's admin
        for label in HIDDEN_ADMIN_APPS:
            for model in apps.get_app_config(label).get_models():
                if admin.site.is_registered(model):
                    admin.site.unregister(model)


class PlatformConfig(AppConfig):
    name = "agentplatform"
    label = "agentplatform"
    verbose_name = "Agent platform"

    def ready(self) -> None:
        # An SQLite database's directory (the data directory, by default) is made when Django
        # starts, not when the settings are read: a deployment on PostgreSQL makes none.
        for database in settings.DATABASES.values():
            if database["ENGINE"].endswith("sqlite3") and str(database["NAME"]) != ":memory:":
                Path(database["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        # (sent once per app that has models; this one has none, so no sender is named)
        pre_migrate.connect(_without_statement_timeout, dispatch_uid="agentplatform.statement_timeout_off")
        post_migrate.connect(_with_statement_timeout, dispatch_uid="agentplatform.statement_timeout_on")


def _without_statement_timeout(using: str, **kwargs: object) -> None:
    """Migrations may take longer than DATABASE_STATEMENT_TIMEOUT allows a request (an index
    on a large table): the connection migrating has none until they are done."""
    if connections[using].vendor == "postgresql":
        with connections[using].cursor() as cursor:
            cursor.execute("SET statement_timeout = 0")


def _with_statement_timeout(using: str, **kwargs: object) -> None:
    if connections[using].vendor == "postgresql":
        with connections[using].cursor() as cursor:
            cursor.execute("RESET statement_timeout")  # back to the connection's setting
