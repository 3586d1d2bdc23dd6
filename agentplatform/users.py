"""Who owns rows: the user model, named once for type annotations at the ownership boundary."""

from __future__ import annotations

from typing import TypeAlias

from django.contrib.auth.models import User as _DjangoUser
from django.http import HttpRequest

User: TypeAlias = _DjangoUser  # settings.AUTH_USER_MODEL is Django's own (auth.User)


def signed_in(request: HttpRequest) -> User:
    """The request's user, which the view's own checks (the admin's, the API's) have signed in."""
    user = request.user
    assert isinstance(user, User), "a signed-in user is required here"
    return user
