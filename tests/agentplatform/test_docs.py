"""The documentation cannot drift from the code: the configuration reference is generated
from the settings dataclasses, and every environment variable the code reads is in it."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATION = ROOT / "docs" / "reference" / "configuration.md"
APPS = ("agentplatform", "agents", "approvals", "context", "tracing")
# Read by the code, but not configuration: how the processes find each other.
INTERNAL = {"DJANGO_SETTINGS_MODULE", "AGENTPLATFORM_SUPERVISOR_PLAN"}
READS = re.compile(
    r"""(?:env_(?:str|bool|int|float|list)\(|os\.environ\.get\(|os\.environ\[|_VARIABLES? = \(?)\s*"([A-Z][A-Z0-9_]+)"""
)


def _config_reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location("config_reference", ROOT / "scripts" / "config_reference.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_configuration_reference_is_generated_from_the_settings_dataclasses():
    # Given the page as committed
    page = CONFIGURATION.read_text()

    # When its settings tables are rendered again from the dataclasses
    fresh = _config_reference().updated(page)

    # Then nothing changes (else: python scripts/config_reference.py)
    assert fresh == page


def test_every_settings_field_has_a_meaning_and_no_variable_sets_two_fields():
    module = _config_reference()
    variables: list[str] = []
    for _title, _setting, _module, cls in module.sections():
        for field in cls.__dataclass_fields__.values():
            assert field.metadata.get("help"), f"{cls.__name__}.{field.name} has no help text"
            if field.metadata.get("env"):
                variables.append(field.metadata["env"])
    assert len(variables) == len(set(variables))


def test_every_environment_variable_the_code_reads_is_documented():
    # Given every variable name the platform's code reads from the environment
    read = {
        name for app in APPS for path in (ROOT / app).rglob("*.py") for name in READS.findall(path.read_text())
    } - INTERNAL
    assert {"DATABASE_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"} <= read  # the scan finds both kinds of read

    # Then the configuration reference names each of them
    page = CONFIGURATION.read_text()
    assert sorted(name for name in read if f"`{name}`" not in page) == []
