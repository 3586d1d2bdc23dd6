"""Plain factory functions for test data."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User

from agents import services
from agents.models import Agent, ApiKey


def create_user(username: str = "alice", **overrides: Any) -> User:
    return get_user_model().objects.create_user(username=username, password="pw-for-tests", **overrides)


def create_api_key(user: Any = None, **overrides: Any) -> tuple[ApiKey, str]:
    user = user or create_user()
    return services.create_api_key(user=user, **overrides)


def agent_row(name: str) -> Agent:
    return Agent.objects.get(name=name)
