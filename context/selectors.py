"""Reads of context sources and injections, scoped to what a caller may see."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from agents import selectors as agent_selectors
from agents.models import ApiKey, Run
from context.errors import ContextSourceNotFound
from context.models import ContextInjection, ContextSource


def visible_sources(user: Any, api_key: ApiKey | None) -> QuerySet[ContextSource]:
    """An API key sees the sources of the agents it may use; a staff session sees them all."""
    sources = ContextSource.objects.select_related("agent")
    if api_key is not None:
        return sources.filter(agent__in=agent_selectors.visible_agents(api_key))
    return sources if getattr(user, "is_staff", False) else sources.none()


def get_source(user: Any, api_key: ApiKey | None, source_id: str) -> ContextSource:
    if not str(source_id).isdigit():
        raise ContextSourceNotFound(f"No context source {source_id}.")
    try:
        return visible_sources(user, api_key).get(pk=int(source_id))
    except ContextSource.DoesNotExist:
        raise ContextSourceNotFound(f"No context source {source_id}.") from None


def run_injections(run: Run) -> QuerySet[ContextInjection]:
    return ContextInjection.objects.filter(run=run).order_by("position")
