"""No tables: the trace viewer's entries in the admin (and their view permissions).

Traces and spans live in ClickHouse (tracing/store.py). These unmanaged models give the
admin site an app section with "Traces" and "Metrics", and staff a permission to grant.
"""

from __future__ import annotations

from django.db import models


class Trace(models.Model):
    trace_id = models.CharField(primary_key=True, max_length=32)

    class Meta:
        managed = False
        default_permissions = ("view",)
        verbose_name = "trace"

    def __str__(self) -> str:
        return self.trace_id


class Metrics(models.Model):
    id = models.CharField(primary_key=True, max_length=1)

    class Meta:
        managed = False
        default_permissions = ("view",)
        verbose_name = "metrics"
        verbose_name_plural = "metrics"

    def __str__(self) -> str:
        return "metrics"
