"""Plain factory functions for test data."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from agentplatform.audit.actors import Actor
from agents import services
from agents.models import Agent, ApiKey

# Who makes the changes a test sets up (the audit log records them like any other).
SETUP = Actor.command("tests")


def create_user(username: str = "alice", **overrides: Any) -> User:
    return get_user_model().objects.create_user(username=username, password="pw-for-tests", **overrides)


def create_api_key(user: Any = None, **overrides: Any) -> tuple[ApiKey, str]:
    user = user or create_user()
    return services.create_api_key(user=user, actor=SETUP, **overrides)


def agent_row(name: str) -> Agent:
    return Agent.objects.get(name=name)


def totp_code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, digits=device.digits):0{device.digits}d}"


def signed_in_admin(user: User, device: TOTPDevice, password: str) -> Client:
    """A client signed in to the admin through its real login form: password plus TOTP code."""
    client = Client()
    form = {"username": user.get_username(), "password": password, "otp_token": totp_code(device)}
    response = client.post("/admin/login/?next=/admin/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    return client
