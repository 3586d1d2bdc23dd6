"""Admin sign-ins in the audit log: Django reports them by signal (there is no service of ours
to record from). A failure counted by django-axes that locks the username or the address out,
or that a lockout refused, is `locked_out`; any other is `sign_in_failed`."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from agentplatform.audit.actors import Actor
from agentplatform.audit.models import Action, Channel, TargetType
from agentplatform.audit.services import record
from agentplatform.users import User


@receiver(user_logged_in, dispatch_uid="audit-signed-in")
def signed_in(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    if request is None:
        return
    actor = dataclasses.replace(Actor.from_request(request, Channel.ADMIN), user=user)
    record(actor, Action.SIGNED_IN, TargetType.USER, target_id=user.pk, target_label=user.get_username())


@receiver(user_login_failed, dispatch_uid="audit-sign-in-failed")
def sign_in_failed(sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any) -> None:
    if request is None:
        return
    username = str(credentials.get("username") or "")
    locked = bool(getattr(request, "axes_locked_out", False))  # axes' receiver ran first (INSTALLED_APPS order)
    user = User.objects.filter(username=username).first() if username else None
    record(
        Actor.from_request(request, Channel.ADMIN),
        Action.LOCKED_OUT if locked else Action.SIGN_IN_FAILED,
        TargetType.USER,
        target_id=user.pk if user is not None else "",
        target_label=username,
        after={"username": username, "failures": getattr(request, "axes_failures_since_start", None)},
    )
