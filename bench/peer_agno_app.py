"""The peer for the capacity benchmark: Agno's AgentOS serving the same agent as `bench`.

One agent, `bench`, on the fake model through Agno's OpenAI chat model (`base_url` from
OPENAI_BASE_URL), with one trivial tool, sessions and runs stored in SQLite (Agno's
`SqliteDb`, file from PEER_DB_FILE) or, with PEER_DB_URL, in PostgreSQL (Agno's `PostgresDb`,
schema `ai`, its default). Served by uvicorn from its own virtualenv
(bench/capacity_peer.py makes it): `python -m uvicorn bench.peer_agno_app:app`.
"""

from __future__ import annotations

import os

from agno.agent import Agent
from agno.db.base import BaseDb
from agno.db.postgres import PostgresDb
from agno.db.sqlite import SqliteDb
from agno.models.openai import OpenAIChat
from agno.os import AgentOS


def lookup(key: str) -> str:
    """Look a value up by key (benchmark: a constant-time string).

    Args:
        key: The key to look up.
    """
    return f"value-of-{key}"


def _db() -> BaseDb:
    url = os.environ.get("PEER_DB_URL")
    if url:
        return PostgresDb(db_url=url.replace("postgres://", "postgresql+psycopg://", 1), db_schema="ai")
    return SqliteDb(db_file=os.environ["PEER_DB_FILE"])


agent = Agent(
    id="bench",
    name="bench",
    model=OpenAIChat(id="bench-model", base_url=os.environ["OPENAI_BASE_URL"], api_key=os.environ["OPENAI_API_KEY"]),
    instructions="Answer briefly.",
    tools=[lookup],
    db=_db(),
)
app = AgentOS(agents=[agent], telemetry=False).get_app()
