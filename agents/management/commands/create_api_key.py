"""`manage.py create_api_key --user U [--agents A,B] [--scopes S,T] [--name N] [--expires-days D]`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from agentplatform.audit.actors import Actor
from agents import services
from agents.models import Agent
from approvals.services import DECIDE_SCOPE
from approvals.webhooks import MANAGE_SCOPE

KNOWN_SCOPES = (DECIDE_SCOPE, MANAGE_SCOPE)


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class Command(BaseCommand):
    help = "Create an API key for a user (created if needed) and print it once, on its own line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="Username; created (without a password) if missing.")
        parser.add_argument("--agents", type=_csv, default=[], help="Restrict the key to these agents (A,B).")
        parser.add_argument("--scopes", type=_csv, default=[], help=f"Extra rights: {', '.join(KNOWN_SCOPES)}.")
        parser.add_argument("--name", default="", help="A label for the key.")
        parser.add_argument("--expires-days", type=int, default=None, help="Expire the key after this many days.")

    def handle(self, *args: Any, **options: Any) -> None:
        unknown_scopes = sorted(set(options["scopes"]) - set(KNOWN_SCOPES))
        if unknown_scopes:
            raise CommandError(f"unknown scopes: {', '.join(unknown_scopes)} (known: {', '.join(KNOWN_SCOPES)})")
        agents = list(Agent.objects.filter(name__in=options["agents"]))
        missing = sorted(set(options["agents"]) - {a.name for a in agents})
        if missing:
            raise CommandError(f"unknown agents: {', '.join(missing)}")
        if options["expires_days"] is not None and options["expires_days"] < 1:
            raise CommandError("--expires-days must be at least 1")
        user, created = get_user_model().objects.get_or_create(username=options["user"])
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        expires_at = (
            timezone.now() + timedelta(days=options["expires_days"]) if options["expires_days"] is not None else None
        )
        api_key, key = services.create_api_key(
            user=user,
            actor=Actor.command("create_api_key"),
            name=options["name"],
            agents=agents,
            scopes=options["scopes"],
            expires_at=expires_at,
        )
        self.stderr.write(
            f"API key {api_key.prefix}… for user {user.get_username()!r}"
            f"{' (new user)' if created else ''}. It is shown once; store it now:"
        )
        self.stdout.write(key)
