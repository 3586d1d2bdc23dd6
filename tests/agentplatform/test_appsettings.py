"""The apps' settings: defaults in the dataclasses only, the environment parsed and checked by field type."""

from __future__ import annotations

import dataclasses

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from agentplatform.appsettings import from_environment
from agentplatform.conf import PlatformSettings, platform_settings
from context.conf import ContextSettings
from tracing.conf import TracingSettings, tracing_settings

CLASSES = (PlatformSettings, ContextSettings, TracingSettings)


@pytest.fixture
def clean_environment(monkeypatch):
    for cls in CLASSES:
        for field in dataclasses.fields(cls):
            if "env" in field.metadata:
                monkeypatch.delenv(field.metadata["env"], raising=False)
    return monkeypatch


@pytest.mark.parametrize("cls", CLASSES)
def test_an_unset_environment_passes_nothing_so_the_dataclass_defaults_hold(clean_environment, cls):
    assert from_environment(cls) == {}


def test_each_variable_the_environment_sets_is_parsed_by_its_fields_type(clean_environment):
    # Given one variable of each type
    clean_environment.setenv("AGENTPLATFORM_MAX_STEPS", "7")
    clean_environment.setenv("AGENTPLATFORM_TOOL_TIMEOUT", "2.5")
    clean_environment.setenv("AGENTPLATFORM_STREAM_DELTAS", "off")
    clean_environment.setenv("AGENTPLATFORM_AGENTS", "a.b:c, d.py:e ,")
    clean_environment.setenv("OTEL_SERVICE_NAME", "billing")

    # When the settings read the environment
    platform = from_environment(PlatformSettings)
    tracing = from_environment(TracingSettings)

    # Then only those fields are passed, typed
    assert platform == {"MAX_STEPS": 7, "TOOL_TIMEOUT": 2.5, "STREAM_DELTAS": False, "AGENTS": ["a.b:c", "d.py:e"]}
    assert tracing == {"SERVICE_NAME": "billing"}


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("AGENTPLATFORM_MAX_STEPS", "0", "AGENTPLATFORM_MAX_STEPS must be at least 1, got '0'"),
        ("AGENTPLATFORM_RUN_LEASE_SECONDS", "0.5", "AGENTPLATFORM_RUN_LEASE_SECONDS must be at least 1.0, got '0.5'"),
        ("AGENTPLATFORM_MODEL_MAX_RETRIES", "-1", "AGENTPLATFORM_MODEL_MAX_RETRIES must be at least 0, got '-1'"),
        ("AGENTPLATFORM_WEB_THREADS", "ten", "AGENTPLATFORM_WEB_THREADS must be a int, got 'ten'"),
        (
            "AGENTPLATFORM_TRACE_FLUSH_INTERVAL",
            "0",
            "AGENTPLATFORM_TRACE_FLUSH_INTERVAL must be at least 0.01, got '0'",
        ),
        (
            "AGENTPLATFORM_CONTEXT_CACHE",
            "maybe",
            "AGENTPLATFORM_CONTEXT_CACHE must be a boolean (true/false), got 'maybe'",
        ),
    ],
)
def test_a_bad_value_fails_at_start_up_naming_the_variable(clean_environment, variable, value, message):
    clean_environment.setenv(variable, value)

    with pytest.raises(ImproperlyConfigured) as error:
        _read_all()

    assert str(error.value) == message


def _read_all() -> list[dict[str, object]]:
    return [from_environment(cls) for cls in CLASSES]


def test_every_numeric_default_satisfies_its_own_minimum():
    for cls in CLASSES:
        for field in dataclasses.fields(cls):
            if isinstance(field.default, int | float) and not isinstance(field.default, bool):
                assert field.default >= field.metadata.get("minimum", 0), f"{cls.__name__}.{field.name}"


def test_the_reader_fills_in_the_defaults_and_reads_again_when_the_setting_changes():
    with override_settings(AGENTPLATFORM={"MAX_STEPS": 3}):
        assert platform_settings().MAX_STEPS == 3
        assert platform_settings().HISTORY_LIMIT == PlatformSettings.HISTORY_LIMIT
        assert platform_settings().AGENTS == ["agentplatform.demo:agent"]
    assert platform_settings().MAX_STEPS == PlatformSettings.MAX_STEPS


def test_an_unknown_name_in_a_settings_module_is_refused():
    with (
        override_settings(TRACING={"ENABLED": False, "SAMPLE_RATE": 0.5}),
        pytest.raises(ImproperlyConfigured) as error,
    ):
        tracing_settings()

    assert str(error.value) == "unknown TRACING settings: SAMPLE_RATE"
