"""PostgreSQL settings from the environment: prepared statements, on unless turned off."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from django.db import connection

from agentplatform.env import database_from_url
from agents.models import Run

URL = "postgres://app:secret@db.example:5433/agents"


def test_statements_are_prepared_on_the_server_unless_turned_off(monkeypatch):
    monkeypatch.delenv("DATABASE_PREPARED_STATEMENTS", raising=False)
    options = database_from_url(URL, sqlite_default=Path("unused"))["OPTIONS"]
    assert (options["server_side_binding"], options["prepare_threshold"]) == (True, 5)
    assert options["options"] == "-c plan_cache_mode=force_custom_plan"

    monkeypatch.setenv("DATABASE_PREPARED_STATEMENTS", "false")
    options = database_from_url(URL, sqlite_default=Path("unused"))["OPTIONS"]
    assert "server_side_binding" not in options
    assert "prepare_threshold" not in options
    assert "options" not in options


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL only")
@pytest.mark.django_db
def test_postgresql_parses_a_statement_the_connection_repeats_once_and_plans_it_for_its_values():
    run_id = uuid.uuid4()
    for _ in range(6):  # prepared from the fifth time on
        assert not Run.objects.filter(pk=run_id).exists()

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
        cursor.execute("SHOW plan_cache_mode")
        mode = cursor.fetchone()[0]
    assert any('FROM "agents_run"' in statement for statement in prepared), prepared
    # A plan made once for any session, the same for a session of 10 messages and of 10,000,
    # read the long one's messages to sort them (the history benchmark went from flat to 1.7x)
    assert mode == "force_custom_plan"
