"""The package declares what it needs, and the pins it is tested with satisfy it."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def test_every_pinned_requirement_is_a_declared_dependency_whose_range_holds_the_pin() -> None:
    declared = {
        Requirement(line).name.lower(): Requirement(line)
        for line in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    pins = [
        Requirement(line.split("#")[0].strip())
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]

    assert sorted(declared) == sorted(pin.name.lower() for pin in pins)
    for pin in pins:
        (version,) = [spec.version for spec in pin.specifier]
        assert declared[pin.name.lower()].specifier.contains(version, prereleases=True), pin
