"""Who owns rows: the user model, named once for type annotations at the ownership boundary."""

from __future__ import annotations

from typing import TypeAlias

from django.contrib.auth.models import User as _DjangoUser

User: TypeAlias = _DjangoUser  # settings.AUTH_USER_MODEL is Django's own (auth.User)
