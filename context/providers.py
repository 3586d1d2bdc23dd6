"""The provider classes operators may bind in the admin: the built-in ones, plus the import
paths listed in `AGENTPLATFORM_CONTEXT_PROVIDERS`. Nothing else can be instantiated from
the database."""

from __future__ import annotations

from django.utils.module_loading import import_string

from agentplatform.sdk.context import ContextProvider
from context.conf import context_settings
from context.errors import InvalidContextSource

BUILT_IN = [
    "agentplatform.sdk.context.StaticContext",
    "agentplatform.sdk.context.FileContext",
    "agentplatform.sdk.context.HTTPContext",
    "agentplatform.sdk.context.SQLContext",
    "agentplatform.sdk.context.MCPContext",
    "agentplatform.sdk.context.SlackContext",
    "agentplatform.sdk.context.NotionContext",
    "agentplatform.sdk.context.JiraContext",
    "agentplatform.sdk.context.ConfluenceContext",
    "agentplatform.sdk.context.GitHubContext",
    "agentplatform.sdk.context.GoogleDriveContext",
]


def registered_paths() -> list[str]:
    extra = [path for path in context_settings().PROVIDERS if path not in BUILT_IN]
    return BUILT_IN + extra


def provider_class(path: str) -> type[ContextProvider]:
    if path not in registered_paths():
        raise InvalidContextSource(f"{path!r} is not a registered context provider.", details={"field": "provider"})
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise InvalidContextSource(f"{path!r} cannot be imported: {exc}", details={"field": "provider"}) from None
    if not (isinstance(cls, type) and issubclass(cls, ContextProvider)):
        raise InvalidContextSource(f"{path!r} is not a ContextProvider subclass.", details={"field": "provider"})
    return cls


def provider_choices() -> list[tuple[str, str]]:
    return [(path, path.rsplit(".", 1)[-1]) for path in registered_paths()]
