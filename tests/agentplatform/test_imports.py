"""What importing costs, where a process lives as long as the platform: `import agentplatform`
(the settings, the supervisor of `manage.py up`) loads none of the SDK, each SDK name loads
only its own module, the supervisor loads no Django and no client library, and the span
sink no app and no ClickHouse driver until it opens the store."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import agentplatform
from agentplatform.sdk import context
from tests.embedded import ROOT

HEAVY = ("django.apps", "redis", "mcp", "psycopg", "pydantic", "opentelemetry", "openai", "anthropic", "jsonschema")


def _loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code`."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(result.stdout))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.startswith(HEAVY) or m.startswith("agentplatform.sdk."))


def test_importing_the_package_loads_no_sdk_module_and_no_dependency():
    assert _heavy(_loaded_after("import agentplatform")) == ["agentplatform.sdk.lazy"]


def test_the_supervisor_loads_no_django_and_no_client_library():
    loaded = _loaded_after("import agentplatform.supervisor")

    assert not {m for m in loaded if m.split(".")[0] in ("django", "redis", "http", "celery")}
    assert _heavy(loaded) == ["agentplatform.sdk.lazy"]


def test_a_name_loads_its_own_module_only():
    loaded = _loaded_after("from agentplatform import Agent, tool")

    assert "agentplatform.sdk.agent" in loaded
    assert not {"agentplatform.sdk.context.mcpcontext", "agentplatform.sdk.context.sql", "mcp", "psycopg"} & loaded


@pytest.mark.parametrize("package", [agentplatform, context], ids=lambda p: p.__name__)
def test_every_exported_name_is_its_modules_object(package):
    for name in package.__all__:
        value = getattr(package, name)
        assert getattr(sys.modules[value.__module__], name) is value, name
    assert set(package.__all__) <= set(dir(package))
    with pytest.raises(AttributeError):
        _ = package.NotExported


def test_the_span_sink_loads_no_app_and_no_clickhouse_driver_until_it_opens_the_store():
    loaded = _loaded_after("import tracing.sink")

    apps_and_drivers = ("agents", "approvals", "context", "clickhouse_connect", "chdb")
    assert not {m for m in loaded if m.split(".")[0] in apps_and_drivers}
    assert not {"django.apps.registry", "django.contrib.admin", "agentplatform.sdk.agent"} & loaded
