"""Secrets at rest under a key ring: the first key encrypts, every key decrypts, and a rotation
re-encrypts what is stored so that the old key can go."""

from __future__ import annotations

import importlib
import io
from types import SimpleNamespace

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from agentplatform.encryption import KeyRing, Unreadable
from approvals import webhook_signing
from approvals.errors import WebhookSecretUnreadable
from approvals.models import WebhookEndpoint
from context import crypto
from context.conf import context_settings
from tests.context.factories import bind_source
from tests.factories import create_user

OLD, NEW = Fernet.generate_key(), Fernet.generate_key()
SCHEMA_EDITOR = SimpleNamespace(connection=connection)  # what a data migration's function uses of it


def test_the_first_key_encrypts_and_every_key_decrypts():
    token = KeyRing.of([OLD]).encrypt("s3cret")

    assert KeyRing.of([NEW, OLD]).decrypt(token) == "s3cret"
    with pytest.raises(Unreadable):
        KeyRing.of([NEW]).decrypt(token)


def test_a_rotated_value_is_read_with_the_new_key_alone():
    token = KeyRing.of([OLD]).encrypt("s3cret")

    rotated = KeyRing.of([NEW, OLD]).rotate(token)

    assert KeyRing.of([NEW]).decrypt(rotated) == "s3cret"
    with pytest.raises(Unreadable):
        KeyRing.of([OLD]).decrypt(rotated)


def _endpoint(secret: str, owner: str = "alice") -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        owner=create_user(owner), url="https://hooks.example.com/in", secret_encrypted=webhook_signing.encrypt(secret)
    )


def _platform(**knobs: object) -> override_settings:
    return override_settings(AGENTPLATFORM={**django_settings.AGENTPLATFORM, **knobs})


@pytest.mark.django_db
def test_rotating_the_webhook_key_keeps_secrets_readable_and_the_command_lets_the_old_key_go():
    # Given a secret stored under the key "old"
    with _platform(WEBHOOK_SECRETS_KEY=["old"]):
        endpoint = _endpoint("whsec_one")

    # When a new key is put first, and the secrets are re-encrypted
    with _platform(WEBHOOK_SECRETS_KEY=["new", "old"]):
        assert webhook_signing.decrypt(WebhookEndpoint.objects.get().secret_encrypted) == "whsec_one"
        out = io.StringIO()
        call_command("reencrypt_secrets", stdout=out)
    assert "1 webhook secrets" in out.getvalue()

    # Then the new key alone reads it, and the old one alone does not
    stored = WebhookEndpoint.objects.get(pk=endpoint.pk).secret_encrypted
    with _platform(WEBHOOK_SECRETS_KEY=["new"]):
        assert webhook_signing.decrypt(stored) == "whsec_one"
    with _platform(WEBHOOK_SECRETS_KEY=["old"]), pytest.raises(WebhookSecretUnreadable):
        webhook_signing.decrypt(stored)


@pytest.mark.django_db
def test_a_credential_stored_under_the_derived_key_moves_to_a_set_key_by_the_data_migration(settings):
    # Given a credential stored with no key set (derived from the secret key)
    source = bind_source(name="gh", provider="GitHubContext", parameters={"repo": "acme/app"}, secret="ghp_token")

    # When a key is set, the stored credential still reads; the migration re-encrypts it
    key = Fernet.generate_key().decode()
    settings.AGENTPLATFORM_CONTEXT = {**settings.AGENTPLATFORM_CONTEXT, "ENCRYPTION_KEY": [key]}
    assert crypto.decrypt(source.credential_encrypted) == "ghp_token"
    migration = importlib.import_module("context.migrations.0002_reencrypt_credentials")
    migration.reencrypt_credentials(apps, SCHEMA_EDITOR)

    # Then the set key alone reads it
    stored = type(source).objects.get(pk=source.pk).credential_encrypted
    assert stored != source.credential_encrypted
    assert KeyRing.of([key.encode()]).decrypt(stored) == "ghp_token"
    assert [key] == context_settings().ENCRYPTION_KEY


@pytest.mark.django_db
def test_the_webhook_migration_reencrypts_under_the_first_key_and_leaves_unreadable_values():
    with _platform(WEBHOOK_SECRETS_KEY=["old"]):
        readable = _endpoint("whsec_two")
    lost = _endpoint("whsec_lost", owner="bob")
    WebhookEndpoint.objects.filter(pk=lost.pk).update(secret_encrypted=KeyRing.of([OLD]).encrypt("x"))
    lost.refresh_from_db()

    migration = importlib.import_module("approvals.migrations.0005_reencrypt_webhook_secrets")
    with _platform(WEBHOOK_SECRETS_KEY=["new", "old"]):
        migration.reencrypt_secrets(apps, SCHEMA_EDITOR)

    with _platform(WEBHOOK_SECRETS_KEY=["new"]):
        assert webhook_signing.decrypt(WebhookEndpoint.objects.get(pk=readable.pk).secret_encrypted) == "whsec_two"
    assert WebhookEndpoint.objects.get(pk=lost.pk).secret_encrypted == lost.secret_encrypted


def test_a_key_that_is_not_a_fernet_key_is_a_configuration_error(settings):
    settings.AGENTPLATFORM_CONTEXT = {"ENCRYPTION_KEY": ["not-a-key"]}
    with pytest.raises(ImproperlyConfigured, match="AGENTPLATFORM_ENCRYPTION_KEY"):
        crypto.encrypt("x")
