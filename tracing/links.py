"""Links between the trace viewer and the apps' admin pages.

The apps above fill in how to reach their pages at start-up (tracing imports none of them):
`register_run_url(build)`, where `build(run_id)` is a run's admin URL.
"""

from __future__ import annotations

from collections.abc import Callable

from django.urls import reverse


class _Registry:
    run_url: Callable[[str], str] | None = None


def register_run_url(build: Callable[[str], str]) -> None:
    _Registry.run_url = build


def run_url(run_id: str) -> str:
    """A run's admin page ("" if no app registered one, or for no run)."""
    build = _Registry.run_url
    return build(run_id) if build is not None and run_id else ""


def run_traces_url(run_id: object) -> str:
    """The trace viewer for a run: its trace (or the list of them, if it has several)."""
    return reverse("admin:tracing_trace_run", args=[str(run_id)])
