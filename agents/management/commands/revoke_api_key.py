"""`manage.py revoke_api_key PREFIX [PREFIX ...]`: revoke keys by the prefix the admin shows."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agentplatform.audit.actors import Actor
from agents import services
from agents.models import ApiKey


class Command(BaseCommand):
    help = "Revoke API keys, named by their prefix (ap_…, as the admin lists them); each revocation is audited."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefixes", nargs="+", help="The keys' prefixes.")

    def handle(self, *args: Any, **options: Any) -> None:
        prefixes = [prefix.rstrip("…") for prefix in options["prefixes"]]
        keys = list(ApiKey.objects.filter(prefix__in=prefixes))
        missing = sorted(set(prefixes) - {key.prefix for key in keys})
        if missing:
            raise CommandError(f"no API key with the prefix {', '.join(missing)}")
        revoked = services.revoke_api_keys(keys, actor=Actor.command("revoke_api_key"))
        self.stdout.write(f"{revoked} key(s) revoked ({len(keys) - revoked} already revoked).")
