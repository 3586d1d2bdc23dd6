"""Reads of context sources and injections, scoped to what a caller may see."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from agentplatform.users import Key, User
from context.errors import ContextSourceNotFound
from context.models import ContextInjection, ContextSource


def visible_sources(user: User, api_key: Key | None) -> QuerySet[ContextSource]:
    """An API key sees the sources of the agents it may use (all, or those it is restricted
    to); a staff session sees them all."""
    sources = ContextSource.objects.select_related("agent").filter(agent__registered=True)
    if api_key is not None:
        restricted_to = list(api_key.agents.values_list("pk", flat=True))
        return sources.filter(agent_id__in=restricted_to) if restricted_to else sources
    return sources if getattr(user, "is_staff", False) else sources.none()


def get_source(user: User, api_key: Key | None, source_id: int | str) -> ContextSource:
    if not str(source_id).isdigit():
        raise ContextSourceNotFound(f"No context source {source_id}.")
    try:
        return visible_sources(user, api_key).get(pk=int(source_id))
    except ContextSource.DoesNotExist:
        raise ContextSourceNotFound(f"No context source {source_id}.") from None


def run_injections(run_id: Any) -> QuerySet[ContextInjection]:
    return ContextInjection.objects.filter(run_id=run_id).order_by("position")
