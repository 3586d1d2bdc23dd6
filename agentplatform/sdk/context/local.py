"""Context that needs no network: fixed text, and files on the worker's disk."""

from __future__ import annotations

import asyncio
import glob
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentplatform.sdk.context.base import ContextError, ContextItem, ContextProvider

MAX_FILES = 50


class StaticContext(ContextProvider):
    """Fixed text (or items), e.g. a policy or a glossary, injected like any other source."""

    kind = "static"

    def __init__(self, text: str = "", *, title: str = "", items: Sequence[ContextItem] = (), **options: Any) -> None:
        super().__init__(**options)
        if not text and not items:
            raise ValueError("StaticContext needs text or items")
        self.items = ([ContextItem(title=title, text=text)] if text else []) + list(items)

    async def fetch(self) -> list[ContextItem]:
        return list(self.items)


class FileContext(ContextProvider):
    """Text files read at fetch time: one path, or glob patterns (`docs/**/*.md`).

    Args:
        paths: A path or a list of paths and glob patterns.
        allowed_roots: When given, every file must resolve inside one of these directories
            (the platform sets it for sources bound in the admin).
        max_file_bytes: Larger files are read up to this size.
    """

    kind = "file"

    def __init__(
        self,
        paths: str | Sequence[str],
        *,
        encoding: str = "utf-8",
        max_file_bytes: int = 1_000_000,
        allowed_roots: Sequence[str] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        patterns = [paths] if isinstance(paths, str) else list(paths)
        if not patterns or not all(isinstance(p, str) and p for p in patterns):
            raise ValueError("paths must be a path or a list of paths")
        self.paths = patterns
        self.encoding = encoding
        self.max_file_bytes = max_file_bytes
        self.allowed_roots = [Path(root).resolve() for root in allowed_roots] if allowed_roots is not None else None
        if self.allowed_roots is not None:
            for pattern in patterns:
                self._check_allowed(Path(pattern.split("*", 1)[0] or ".").resolve(), pattern)

    def default_name(self) -> str:
        return f"file:{Path(self.paths[0]).name}"

    def _check_allowed(self, path: Path, shown: str) -> None:
        if self.allowed_roots is not None and not any(path.is_relative_to(root) for root in self.allowed_roots):
            raise ValueError(f"{shown} is outside the directories context files may come from")

    def _files(self) -> list[Path]:
        found: list[Path] = []
        for pattern in self.paths:
            matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
            found.extend(Path(match) for match in matches if Path(match).is_file() or not glob.has_magic(pattern))
        return found[:MAX_FILES]

    def _read(self) -> list[ContextItem]:
        items = []
        for path in self._files():
            resolved = path.resolve()
            try:
                self._check_allowed(resolved, str(path))
            except ValueError as exc:
                raise ContextError(str(exc)) from None
            try:
                with resolved.open("rb") as handle:
                    data = handle.read(self.max_file_bytes)
            except OSError as exc:
                raise ContextError(f"cannot read {path}: {exc.strerror}") from None
            items.append(
                ContextItem(title=path.name, text=data.decode(self.encoding, "replace"), url=resolved.as_uri())
            )
        return items

    async def fetch(self) -> list[ContextItem]:
        return await asyncio.to_thread(self._read)
