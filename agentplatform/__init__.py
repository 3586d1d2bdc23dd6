"""agentplatform: a self-hostable production layer for AI agents.

The public SDK is importable without Django being configured:

    from agentplatform import Agent, tool, ToolPermission, serve
    from agentplatform import MCPContext, HTTPContext, SlackContext  # context providers

Each name is imported when first used, so that `import agentplatform` (and the settings,
and the supervisor of `manage.py up`, which live in this package) loads none of the SDK.
"""

from typing import TYPE_CHECKING

from agentplatform.sdk.lazy import lazy_exports

if TYPE_CHECKING:
    from agentplatform.sdk.agent import Agent, ApprovalRequired, RunContext, ToolCallError
    from agentplatform.sdk.context import (
        ConfluenceContext,
        ContextError,
        ContextItem,
        ContextProvider,
        FileContext,
        GitHubContext,
        GoogleDriveContext,
        HTTPContext,
        JiraContext,
        MCPContext,
        MemoryCache,
        NotionContext,
        RedisCache,
        Secret,
        SlackContext,
        SQLContext,
        StaticContext,
        fetch_context,
    )
    from agentplatform.sdk.models import ChatMessage, ModelProvider, ModelRequest, ModelResponse, ToolCall, Usage
    from agentplatform.sdk.serve import serve
    from agentplatform.sdk.tools import Tool, ToolPermission, tool
else:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "agentplatform.sdk.agent": ("Agent", "ApprovalRequired", "RunContext", "ToolCallError"),
            "agentplatform.sdk.context": (
                "ConfluenceContext",
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
                "Secret",
                "SlackContext",
                "SQLContext",
                "StaticContext",
                "fetch_context",
            ),
            "agentplatform.sdk.models": (
                "ChatMessage",
                "ModelProvider",
                "ModelRequest",
                "ModelResponse",
                "ToolCall",
                "Usage",
            ),
            "agentplatform.sdk.serve": ("serve",),
            "agentplatform.sdk.tools": ("Tool", "ToolPermission", "tool"),
        },
    )

__all__ = [
    "Agent",
    "ApprovalRequired",
    "ChatMessage",
    "ConfluenceContext",
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
    "ModelProvider",
    "ModelRequest",
    "ModelResponse",
    "NotionContext",
    "RedisCache",
    "RunContext",
    "SQLContext",
    "Secret",
    "SlackContext",
    "StaticContext",
    "Tool",
    "ToolCall",
    "ToolCallError",
    "ToolPermission",
    "Usage",
    "fetch_context",
    "serve",
    "tool",
]
