"""Webhook secrets re-encrypted under the first key of the current key ring
(`AGENTPLATFORM_WEBHOOK_SECRETS_KEY`, else the key derived from `DJANGO_SECRET_KEY`)."""

from django.db import migrations

from agentplatform.encryption import reencrypt
from approvals.webhook_signing import keyring


def reencrypt_secrets(apps, schema_editor):
    endpoints = apps.get_model("approvals", "WebhookEndpoint").objects.using(schema_editor.connection.alias)
    reencrypt(endpoints.all(), "secret_encrypted", keyring())


class Migration(migrations.Migration):
    dependencies = [("approvals", "0004_decision_comment")]

    operations = [migrations.RunPython(reencrypt_secrets, migrations.RunPython.noop, elidable=True)]
