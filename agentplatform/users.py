"""Who owns rows and who calls: the user model, named once for type annotations at the
ownership boundary, and what the apps below `agents` may know of its API keys (they may
not import `agents.models`; the protocol says what they use)."""

from __future__ import annotations

from typing import Any, Protocol, TypeAlias

from django.contrib.auth.models import User as _DjangoUser

User: TypeAlias = _DjangoUser  # settings.AUTH_USER_MODEL is Django's own (auth.User)


class Key(Protocol):
    """An API key (`agents.models.ApiKey`)."""

    pk: Any
    prefix: str
    agents: Any  # the agents it is restricted to (none: every agent)
