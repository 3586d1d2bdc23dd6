"""One reader for the apps' settings dataclasses (`PlatformSettings`, `ContextSettings`, `TracingSettings`).

A settings dataclass is the one place for its knobs' defaults. Each field may name the
environment variable that sets it (`metadata["env"]`) and the least value it takes
(`metadata["minimum"]`, for numbers; 0 when not given). `settings.py` passes a dataclass's
Django setting only what the environment sets (`from_environment`); an app reads its knobs
through an `AppSettings`, which fills in the defaults, refuses unknown names and reads again
when the setting changes (`override_settings` in tests).
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from agentplatform.env import env_bool, env_float, env_int, env_list, env_str

T = TypeVar("T")


def from_environment(cls: type[Any]) -> dict[str, Any]:
    """The fields of the settings dataclass `cls` whose environment variable is set, parsed and checked."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        name = field.metadata.get("env")
        if name and name in os.environ:
            values[field.name] = _parse(name, hints[field.name], field)
    return values


def _parse(name: str, kind: Any, field: dataclasses.Field[Any]) -> Any:
    default: Any = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
    minimum = field.metadata.get("minimum", 0)
    readers: dict[Any, Callable[[], Any]] = {
        bool: lambda: env_bool(name, default),
        int: lambda: env_int(name, default, minimum=minimum),
        float: lambda: env_float(name, default, minimum=minimum),
        str: lambda: env_str(name, default),
        list[str]: lambda: env_list(name, default),
    }
    if kind not in readers:
        raise TypeError(f"{field.name}: no environment reader for {kind!r}")
    return readers[kind]()


class AppSettings(Generic[T]):
    """The Django setting `setting` (a dict) read into the dataclass `cls`, once until it changes.

    Call it for the typed object: `tracing_settings = AppSettings(TracingSettings, "TRACING")`,
    then `tracing_settings().ENABLED`. `reset_on` names other settings the object depends on.
    """

    def __init__(self, cls: type[T], setting: str, *, reset_on: tuple[str, ...] = ()) -> None:
        self._cls = cls
        self._setting = setting
        self._reset_on = {setting, *reset_on}
        self._value: T | None = None
        setting_changed.connect(self._reset, weak=False)

    def __call__(self) -> T:
        if self._value is None:
            self._value = self._read()
        return self._value

    def cache_clear(self) -> None:
        self._value = None

    def _read(self) -> T:
        configured: dict[str, Any] = getattr(settings, self._setting, {})
        unknown = set(configured) - {f.name for f in dataclasses.fields(self._cls)}  # type: ignore[arg-type]
        if unknown:
            raise ImproperlyConfigured(f"unknown {self._setting} settings: {', '.join(sorted(unknown))}")
        return self._cls(**configured)

    def _reset(self, *, setting: str, **_: Any) -> None:
        if setting in self._reset_on:
            self.cache_clear()
