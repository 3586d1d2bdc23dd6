"""Stored credentials re-encrypted under the first key of the current key ring
(`AGENTPLATFORM_ENCRYPTION_KEY`, else the key derived from `DJANGO_SECRET_KEY`)."""

from django.db import migrations

from agentplatform.encryption import reencrypt
from context.crypto import keyring


def reencrypt_credentials(apps, schema_editor):
    sources = apps.get_model("context", "ContextSource").objects.using(schema_editor.connection.alias)
    reencrypt(sources.all(), "credential_encrypted", keyring())


class Migration(migrations.Migration):
    dependencies = [("context", "0001_initial")]

    operations = [migrations.RunPython(reencrypt_credentials, migrations.RunPython.noop, elidable=True)]
