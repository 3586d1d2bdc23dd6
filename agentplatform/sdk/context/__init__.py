"""Context providers: live data fetched before each run and injected into the system prompt.

Importable without Django configured. See `base.ContextProvider` for writing a provider,
`render` for the format, and `fetch` for how sources are fetched (concurrently, with
timeouts and a cache). Each name is imported when first used: a process that uses no MCP
or SQL source loads neither client library.
"""

from typing import TYPE_CHECKING

from agentplatform.sdk.lazy import lazy_exports

if TYPE_CHECKING:
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
else:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "agentplatform.sdk.context.atlassian": ("ConfluenceContext", "JiraContext"),
            "agentplatform.sdk.context.base": (
                "Collected",
                "ContextError",
                "ContextItem",
                "ContextProvider",
                "Secret",
                "ToolDefinition",
            ),
            "agentplatform.sdk.context.cache": ("ContextCache", "MemoryCache", "RedisCache"),
            "agentplatform.sdk.context.fetch": ("ContextBundle", "SourceResult", "fetch_context", "fetch_sources"),
            "agentplatform.sdk.context.gdrive": ("GoogleDriveContext",),
            "agentplatform.sdk.context.github": ("GitHubContext",),
            "agentplatform.sdk.context.http": ("HTTPContext", "RestSource"),
            "agentplatform.sdk.context.local": ("FileContext", "StaticContext"),
            "agentplatform.sdk.context.mcpcontext": ("MCPContext",),
            "agentplatform.sdk.context.notion": ("NotionContext",),
            "agentplatform.sdk.context.slack": ("SlackContext",),
            "agentplatform.sdk.context.sql": ("SQLContext", "WriteRefused"),
        },
    )

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
