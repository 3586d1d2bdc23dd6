from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.client import SyncLangGraphClient

from tests.agents.langgraph import lg_url


@pytest.fixture
def connect(daphne) -> Iterator[Callable[[str], SyncLangGraphClient]]:
    """LangGraph SDK clients for API keys, on the Daphne process; closed after the test."""
    clients: list[SyncLangGraphClient] = []

    def connect(key: str) -> SyncLangGraphClient:
        clients.append(get_sync_client(url=lg_url(daphne), api_key=key))
        return clients[-1]

    yield connect
    for client in clients:
        client.close()


@pytest.fixture
def every_chunk(settings):
    """The worker stores each chunk of the answer as it comes (not joined with the next)."""
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "DELTA_INTERVAL": 0.0}
