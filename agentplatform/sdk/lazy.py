"""Names a package exports, each imported from its module when first read (PEP 562).

`import agentplatform` then costs nothing: a process loads the SDK modules it uses (and
their dependencies: Redis, MCP, psycopg, ...), not all of them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence


def lazy_exports(
    package: str, exports: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The package's `__getattr__` and `__dir__`, for `exports` ({module: names it defines})."""
    home = {name: module for module, names in exports.items() for name in names}
    namespace = vars(sys.modules[package])

    def __getattr__(name: str) -> object:  # noqa: N807  # the module hook's name
        module = home.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # the next read finds it without this hook
        return value

    def __dir__() -> list[str]:  # noqa: N807  # the module hook's name
        return sorted({*namespace, *home})

    return __getattr__, __dir__
