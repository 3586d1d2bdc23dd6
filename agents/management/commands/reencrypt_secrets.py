"""`manage.py reencrypt_secrets`: every secret at rest re-encrypted under the first key of its ring."""

from typing import Any

from django.core.management.base import BaseCommand

from agentplatform.encryption import reencrypt
from approvals import webhook_signing
from approvals.models import WebhookEndpoint
from context import crypto
from context.models import ContextSource


class Command(BaseCommand):
    help = (
        "Re-encrypt webhook secrets and stored context credentials under the first of their keys, "
        "after a new key was put first (the old ones can then be removed)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        webhooks = reencrypt(WebhookEndpoint.objects.all(), "secret_encrypted", webhook_signing.keyring())
        credentials = reencrypt(ContextSource.objects.all(), "credential_encrypted", crypto.keyring())
        self.stdout.write(f"{webhooks} webhook secrets and {credentials} context credentials re-encrypted.")
