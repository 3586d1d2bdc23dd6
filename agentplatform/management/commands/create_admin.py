"""`manage.py create_admin --username U [--email E] [--no-qr]`: a superuser with a TOTP device.

It prints the password and the device's provisioning URI once, and the URI as a QR code drawn
with Unicode half blocks (light modules drawn, for a dark terminal) to scan with the app.
"""

from __future__ import annotations

import io
import secrets
from typing import Any

import segno
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
        parser.add_argument("--no-qr", action="store_true", help="Do not draw the URI as a QR code.")

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
        if not options["no_qr"]:
            self.stdout.write("\nOr scan this QR code (the same URI):\n" + terminal_qr(device.config_url))


def terminal_qr(text: str) -> str:
    """`text` as a QR code in Unicode half blocks, two modules per character cell."""
    out = io.StringIO()
    segno.make_qr(text).terminal(out=out, compact=True)
    return out.getvalue()
