"""A TracerProvider of your own keeps working: our processor is added to it, so your
exporters and our store both receive the same spans (run in a fresh interpreter, since a
process has one global provider)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    # The user's own set-up, before Django starts
    theirs = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(theirs))
    trace.set_tracer_provider(provider)

    import django
    django.setup()  # the tracing app installs itself

    from django.test import Client
    from agentplatform.sdk.models import ChatMessage, ModelRequest
    from agentplatform.sdk.providers.demo import DemoModel
    from tracing import migrate, setup, store

    store.open_embedded(Path(sys.argv[1]))
    migrate.apply()
    with trace.get_tracer("user.app").start_as_current_span("user.work"):
        Client().get("/api/v1/agents/")
        DemoModel().complete(ModelRequest("", (ChatMessage("user", "hi"),)))
    installed = setup.installed()
    assert installed.processor.force_flush(10_000)
    stored = store.run_read("SELECT name, trace_id FROM spans ORDER BY name", {}).rows
    print(json.dumps({
        "theirs": sorted(span.name for span in theirs.get_finished_spans()),
        "ours": [name for name, _ in stored],
        "traces": len({trace_id for _, trace_id in stored}),
        "provider_is_theirs": installed.provider is provider and not installed.ours,
    }))
    """
)


def test_your_tracer_provider_and_exporter_keep_receiving_spans_next_to_the_store(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "AGENTPLATFORM_TRACING": "true",
        "AGENTPLATFORM_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "clickhouse")],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])

    expected = ["GET api/v1/agents/", "chat demo", "user.work"]
    assert seen["provider_is_theirs"]
    assert seen["theirs"] == expected  # their exporter got every span, ours included
    assert seen["ours"] == expected  # and the store got the same spans
    assert seen["traces"] == 1
