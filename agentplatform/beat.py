"""The beat scheduler: django-celery-beat's DatabaseScheduler without its start-up blind spot.

Beat notices a change by comparing the change stamp it saw last with the current one, and
takes its first comparison as a mere baseline (no stamp seen yet: nothing changed). A
schedule saved between beat's first read and that first comparison (while beat writes the
settings' entries at start) was ignored until the next full reload, five minutes later.
Starting from a stamp older than any change makes the first comparison count.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django_celery_beat.schedulers import DatabaseScheduler as _DatabaseScheduler


class DatabaseScheduler(_DatabaseScheduler):
    _last_timestamp = datetime(1970, 1, 1, tzinfo=UTC)
