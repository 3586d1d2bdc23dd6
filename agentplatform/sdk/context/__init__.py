"""Context providers: live data fetched before each run and injected into the system prompt.

Importable without Django configured. See `base.ContextProvider` for writing a provider,
`render` for the format, and `fetch` for how sources are fetched (concurrently, with
timeouts and a cache).
"""

from agentplatform.sdk.context.atlassian import ConfluenceContext, JiraContext
from agentplatform.sdk.context.base import (
    Collected,
    ContextError,
    ContextItem,
    ContextProvider,
    Secret,
    ToolDefinition,
)
from agentplatform.sdk.context.cache import ContextCache, MemoryCache, RedisCache
from agentplatform.sdk.context.fetch import ContextBundle, SourceResult, fetch_context, fetch_sources
from agentplatform.sdk.context.gdrive import GoogleDriveContext
from agentplatform.sdk.context.github import GitHubContext
from agentplatform.sdk.context.http import HTTPContext, RestSource
from agentplatform.sdk.context.local import FileContext, StaticContext
from agentplatform.sdk.context.mcpcontext import MCPContext
from agentplatform.sdk.context.notion import NotionContext
from agentplatform.sdk.context.slack import SlackContext
from agentplatform.sdk.context.sql import SQLContext, WriteRefused

__all__ = [
    "Collected",
    "ConfluenceContext",
    "ContextBundle",
    "ContextCache",
    "ContextError",
    "ContextItem",
    "ContextProvider",
    "FileContext",
    "GitHubContext",
    "GoogleDriveContext",
    "HTTPContext",
    "JiraContext",
    "MCPContext",
    "MemoryCache",
    "NotionContext",
    "RedisCache",
    "RestSource",
    "SQLContext",
    "Secret",
    "SlackContext",
    "SourceResult",
    "StaticContext",
    "ToolDefinition",
    "WriteRefused",
    "fetch_context",
    "fetch_sources",
]
