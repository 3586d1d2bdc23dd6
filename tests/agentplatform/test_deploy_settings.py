"""Deployment settings: the documented production configuration passes `check --deploy`, a shared
deployment cannot start without a secret key, and reading the settings makes no directory."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from agentplatform.env import env_pair, secret_key, shared_service
from tests.embedded import ROOT

PRODUCTION_ENV = ROOT / "docs" / "guides" / "production.env"


def _production_env() -> dict[str, str]:
    lines = PRODUCTION_ENV.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def _manage(*args: str, data_dir: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "AGENTPLATFORM_DATA_DIR": str(data_dir), **variables}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_documented_production_configuration_passes_check_deploy_and_makes_no_directory(tmp_path):
    # Given the production configuration of the deployment guide, its services unreachable from here
    data_dir = tmp_path / "data"
    variables = {**_production_env(), "DJANGO_SECRET_KEY": secrets.token_urlsafe(50)}

    # When Django's deployment checks run with every warning an error
    result = _manage("check", "--deploy", "--fail-level", "WARNING", data_dir=data_dir, **variables)

    # Then nothing is reported, and no data directory was made
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
    assert not data_dir.exists()


def test_the_embedded_defaults_are_not_a_production_configuration(tmp_path):
    result = _manage("check", "--deploy", "--fail-level", "WARNING", data_dir=tmp_path / "data")

    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):  # HSTS, SSL, cookies
        assert warning in result.stderr


def test_a_remote_database_without_a_secret_key_stops_at_start_up_with_a_clear_message(tmp_path):
    # Given a database on another machine and no DJANGO_SECRET_KEY
    data_dir = tmp_path / "data"

    # When any command starts
    result = _manage("check", data_dir=data_dir, DATABASE_URL="postgres://app:pw@db.internal:5432/agents")

    # Then it stops, saying which variable is missing and why, and writes no per-host key
    assert result.returncode != 0
    assert (
        "ImproperlyConfigured: DJANGO_SECRET_KEY must be set: DATABASE_URL points at a shared service "
        "(db.internal), and every host must sign sessions and encrypt stored secrets with the same key."
    ) in result.stderr
    assert not data_dir.exists()


@pytest.fixture
def no_services(monkeypatch):
    for name in ("DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_remote_redis_without_a_secret_key_is_refused_too(no_services, tmp_path):
    no_services.setenv("REDIS_URL", "redis://cache.internal:6379/0")

    with pytest.raises(ImproperlyConfigured, match=r"REDIS_URL points at a shared service \(cache.internal\)"):
        secret_key(tmp_path)


def test_on_one_host_a_key_is_generated_once_into_the_data_directory(no_services, tmp_path):
    # Given the embedded services: SQLite, and PostgreSQL and Redis on this machine
    no_services.setenv("DATABASE_URL", "postgres://app@127.0.0.1:5432/agents")
    no_services.setenv("REDIS_URL", "redis://localhost:6379/0")
    data_dir = tmp_path / "data"

    # When the key is read twice
    first, second = secret_key(data_dir), secret_key(data_dir)

    # Then it was generated once, kept readable by its owner only
    assert first == second
    assert len(first) >= 50
    assert (data_dir / "secret_key").stat().st_mode & 0o777 == 0o600


def test_a_set_key_is_used_and_nothing_is_written(no_services, tmp_path):
    no_services.setenv("DJANGO_SECRET_KEY", "k" * 50)
    no_services.setenv("DATABASE_URL", "postgres://app@db.internal/agents")

    assert secret_key(tmp_path / "data") == "k" * 50
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("", None),
        ("sqlite:///srv/db.sqlite3", None),
        ("postgres://app@localhost/agents", None),
        ("postgres://app@[::1]:5432/agents", None),
        ("postgres:///agents?host=/run/postgresql", None),
        ("unix:///run/redis.sock", None),
        ("postgres://app@DB.Internal:5432/agents", "db.internal"),
        ("rediss://:pw@10.0.0.7:6380/0", "10.0.0.7"),
    ],
)
def test_a_service_on_another_machine_is_told_from_the_embedded_ones(url, host):
    assert shared_service(url) == host


def test_the_proxy_header_is_a_header_and_a_value(monkeypatch):
    monkeypatch.setenv("DJANGO_SECURE_PROXY_SSL_HEADER", "HTTP_X_FORWARDED_PROTO, https")
    assert env_pair("DJANGO_SECURE_PROXY_SSL_HEADER") == ("HTTP_X_FORWARDED_PROTO", "https")

    monkeypatch.setenv("DJANGO_SECURE_PROXY_SSL_HEADER", "HTTP_X_FORWARDED_PROTO")
    with pytest.raises(ImproperlyConfigured, match="DJANGO_SECURE_PROXY_SSL_HEADER must be two comma-separated"):
        env_pair("DJANGO_SECURE_PROXY_SSL_HEADER")


def test_variables_set_but_empty_are_unset(tmp_path):
    # Given a shell or a compose file that sets them empty (`AGENTPLATFORM_DATA_DIR=`), run in a directory
    code = "from django.conf import settings; print(settings.DATA_DIR); print(settings.REDIS_URL)"
    env = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "agentplatform.settings", "PYTHONPATH": str(ROOT)}
    env.update(AGENTPLATFORM_DATA_DIR="", REDIS_URL="", CELERY_BROKER_URL="")
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    # Then the defaults hold: the data directory is not the current directory itself
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(tmp_path.resolve() / ".agentplatform"), "redis://127.0.0.1:6379/0"]
