"""Reviewers in the admin (staff with a TOTP device, signed in through the real login form)
and runs paused on a CONFIRM call."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission, User
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from agents.models import Run
from approvals.models import ApprovalRequest
from tests.conftest import Api
from tests.factories import signed_in_admin
from tests.fakes.llm_server import Call, ToolCalls
from tests.infra import wait_until

PASSWORD = "s3cret-pass"
EMAIL = {"to": "bob@example.com", "subject": "hi"}
VIEW, DECIDE = "view_approvalrequest", "decide_approvalrequest"


def create_staff(username: str, *permissions: str) -> tuple[User, TOTPDevice]:
    """A staff user (not a superuser) with these approvals permissions and one TOTP device."""
    user = get_user_model().objects.create_user(username, f"{username}@example.com", PASSWORD, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="approvals", codename__in=permissions))
    return user, TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def sign_in(user: User, device: TOTPDevice) -> Client:
    return signed_in_admin(user, device, PASSWORD)


@pytest.fixture
def decider(db: None) -> Client:
    """A reviewer who may decide: staff, verified, with the view and decide permissions."""
    return sign_in(*create_staff("reviewer", VIEW, DECIDE))


@pytest.fixture
def viewer(db: None) -> Client:
    """Staff who may read the inbox but not decide."""
    return sign_in(*create_staff("reader", VIEW))


def pause(api: Api, llm: Any, arguments: dict[str, Any] | None = None) -> ApprovalRequest:
    """A run of `oai` paused on a `send_email` call; its one pending request."""
    llm.enqueue(ToolCalls([Call("send_email", arguments or EMAIL)]))
    status, run = api.post("/api/v1/agents/oai/runs/", {"input": "email bob"})
    assert (status, run["status"]) == (202, "awaiting_approval")
    return ApprovalRequest.objects.select_related("agent").get(run_id=run["id"])


def finished(run_id: Any) -> Run:
    wait_until(lambda: Run.objects.get(pk=run_id).status not in ("queued", "running", "awaiting_approval"), 30)
    return Run.objects.get(pk=run_id)
