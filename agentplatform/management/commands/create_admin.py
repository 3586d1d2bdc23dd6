"""`manage.py create_admin --username U [--email E]`: a superuser with a TOTP device."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = "Create (or reset) an admin login: a password and a TOTP authenticator, both printed once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--email", default="")
        parser.add_argument("--password", default=None, help="Default: a generated one, printed once.")

    def handle(self, *args: Any, **options: Any) -> None:
        password = options["password"] or secrets.token_urlsafe(12)
        with transaction.atomic():
            user, _ = get_user_model().objects.get_or_create(username=options["username"])
            user.email = options["email"] or user.email
            user.is_staff = user.is_superuser = True
            user.set_password(password)
            user.save()
            TOTPDevice.objects.filter(user=user).delete()
            device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)
        self.stdout.write(
            f"Admin login created.\n"
            f"  username:  {user.get_username()}\n"
            f"  password:  {password}\n"
            f"  2FA:       add this to your authenticator app (TOTP, 6 digits, 30 s):\n"
            f"             {device.config_url}\n"
            f"  Then sign in at /admin/ with the password and the app's current code."
        )
