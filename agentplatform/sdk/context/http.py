"""HTTP for context sources: one client wrapper (auth headers, bounded retries of 429 with
Retry-After, errors without secrets) and `HTTPContext`, a JSON API as a source."""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import ssl
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Self
from urllib.parse import urlsplit

import httpx

from agentplatform.sdk.context.base import (
    ContextError,
    ContextItem,
    ContextProvider,
    Secret,
    as_secret,
    env_name,
    resolve_credential,
)

MAX_RETRIES = 3
MAX_RETRY_WAIT = 60.0  # a Retry-After longer than this is not waited for: the source fails
ERROR_SNIPPET = 300
RETRY_STATUSES = frozenset({429, 503})


@functools.cache
def _tls() -> ssl.SSLContext:
    """One verifying TLS context per process: building one (loading the CA bundle) costs
    about 30 ms of CPU, which every source of every run would otherwise pay."""
    return httpx.create_ssl_context()


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (a number, or an HTTP date); None without one."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class RestClient:
    """An `httpx.AsyncClient` for one service.

    A 429 (or a 503, or GitHub's 403, that carries Retry-After) is retried after the wait
    the server asks for, at most `max_retries` times; without a Retry-After the waits are
    1, 2, 4... seconds. Other error statuses raise `ContextError` with the status, the path
    and the start of the body; request headers (where the credentials are) never appear.
    """

    def __init__(
        self,
        service: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        max_retries: int = MAX_RETRIES,
        auth: httpx.Auth | tuple[str, str] | None = None,
    ) -> None:
        self.service = service
        self.max_retries = max_retries
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers=dict(headers or {}),
            timeout=timeout,
            auth=auth,
            follow_redirects=True,
            verify=_tls(),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.aclose()

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self.max_retries + 1):
            try:
                response = await self._client.request(method, url, **kwargs)
            except httpx.HTTPError as exc:
                raise ContextError(f"{self.service}: {type(exc).__name__} for {_path(url)}") from None
            if not self._rate_limited(response) or attempt == self.max_retries:
                break
            wait = retry_after(response)
            wait = 2.0**attempt if wait is None else wait
            if wait > MAX_RETRY_WAIT:
                raise ContextError(f"{self.service}: rate limited; the server asks to wait {wait:.0f}s")
            await asyncio.sleep(wait)
        if response.is_error:
            raise ContextError(
                f"{self.service}: HTTP {response.status_code} from {_path(str(response.request.url))}: "
                f"{response.text[:ERROR_SNIPPET]}"
            )
        return response

    @staticmethod
    def _rate_limited(response: httpx.Response) -> bool:
        if response.status_code in RETRY_STATUSES:
            return response.status_code == 429 or "Retry-After" in response.headers  # noqa: PLR2004
        return response.status_code == 403 and "Retry-After" in response.headers  # noqa: PLR2004  # GitHub

    async def json(self, method: str, url: str, **kwargs: Any) -> Any:
        response = await self.request(method, url, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise ContextError(f"{self.service}: the response from {_path(url)} is not JSON") from None


def _path(url: str) -> str:
    return urlsplit(url).path or "/"


def dig(data: Any, path: str | None) -> Any:
    """`data["a"]["b"][0]` for the dotted path "a.b.0"; None when a step is missing."""
    if not path:
        return data
    for step in path.split("."):
        if isinstance(data, Mapping):
            data = data.get(step)
        elif isinstance(data, list) and step.isdigit() and int(step) < len(data):
            data = data[int(step)]
        else:
            return None
    return data


def as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


class HTTPContext(ContextProvider):
    """A JSON API as a source: one request, then a selection of fields of each item.

    Args:
        url: The endpoint (credentials go in `token`/`token_env`, never in the URL).
        method: GET (default) or POST, with `json_body` for POST.
        headers: Extra, non-secret headers.
        params: Query parameters.
        items_path: Dotted path to the list of items in the response ("data.items");
            without it a list response is the items, and anything else is one item.
        fields: Dotted paths kept from each item, rendered as `field: value` lines;
            without it the whole item is rendered as JSON.
        title_field / url_field: Dotted paths of each item's title and link.
        token / token_env: A credential sent as `auth_header: auth_scheme token`.
        max_items: At most this many items are kept.
    """

    kind = "http"
    credential_arg = "token"

    def __init__(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        items_path: str | None = None,
        fields: Sequence[str] | None = None,
        title_field: str | None = None,
        url_field: str | None = None,
        token: Secret | str | None = None,
        token_env: str | None = None,
        auth_header: str = "Authorization",
        auth_scheme: str = "Bearer",
        max_items: int = 100,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"url must be http(s), got {url!r}")
        if method.upper() not in ("GET", "POST"):
            raise ValueError("method must be GET or POST")
        if fields is not None and (isinstance(fields, str) or not all(isinstance(f, str) for f in fields)):
            raise ValueError("fields must be a list of dotted paths")
        self.url = url
        self.method = method.upper()
        self.headers = dict(headers or {})
        self.params = dict(params or {})
        self.json_body = json_body
        self.items_path = items_path
        self.fields = list(fields) if fields is not None else None
        self.title_field = title_field
        self.url_field = url_field
        self.token = as_secret(token)
        self.token_env = env_name(token_env, "token_env")
        self.auth_header = auth_header
        self.auth_scheme = auth_scheme
        self.max_items = max_items

    def default_name(self) -> str:
        return f"http:{urlsplit(self.url).netloc}"

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", **self.headers}
        if self.token is not None or self.token_env is not None:
            token = resolve_credential(self.token, self.token_env, what="token")
            headers[self.auth_header] = f"{self.auth_scheme} {token}".strip()
        return headers

    async def fetch(self) -> list[ContextItem]:
        async with RestClient(self.name, self.url, headers=self._headers(), timeout=self.timeout) as client:
            response = await client.request(
                self.method, self.url, params=self.params, json=self.json_body if self.method == "POST" else None
            )
        if "json" not in response.headers.get("Content-Type", "json"):
            return [ContextItem(title=self.name, text=response.text, url=self.url)]
        try:
            data = response.json()
        except ValueError:
            raise ContextError(f"{self.name}: the response is not JSON") from None
        selected = itertools.islice(self._items(data), self.max_items)
        return [self._item(index, item) for index, item in enumerate(selected)]

    def _items(self, data: Any) -> Iterator[Any]:
        selected = dig(data, self.items_path)
        if self.items_path and selected is None:
            raise ContextError(f"{self.name}: the response has nothing at {self.items_path!r}")
        yield from selected if isinstance(selected, list) else [selected]

    def _item(self, index: int, item: Any) -> ContextItem:
        title = dig(item, self.title_field) if self.title_field else None
        link = dig(item, self.url_field) if self.url_field else None
        if self.fields is None:
            text = as_text(item)
        else:
            text = "\n".join(f"{path}: {as_text(dig(item, path))}" for path in self.fields)
        label = as_text(title) if title is not None else f"item {index + 1}"
        return ContextItem(title=label, text=text, url=as_text(link or ""))


class RestSource(ContextProvider):
    """A SaaS API as a source: a base URL (overridable, for self-hosted servers and tests) and
    a token sent as `Authorization: Bearer`, from `token=` or the variable named `token_env`."""

    credential_arg = "token"
    default_base_url: str = ""
    default_env: str = ""

    def __init__(
        self,
        *,
        token: Secret | str | None = None,
        token_env: str | None = None,
        base_url: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        base = base_url or self.default_base_url
        if not base:
            raise ValueError(f"{type(self).__name__} needs base_url (your site's address)")
        if urlsplit(base).scheme not in ("http", "https"):
            raise ValueError(f"base_url must be http(s), got {base!r}")
        self.base_url = base.rstrip("/")
        self.token = as_secret(token)
        self.token_env = env_name(token_env if token_env or token else self.default_env, "token_env")

    def credential(self) -> str:
        return resolve_credential(self.token, self.token_env, what=f"{self.kind} token")

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential()}"}

    def client(self, headers: Mapping[str, str] | None = None) -> RestClient:
        return RestClient(
            self.name, self.base_url, headers={**self.auth_headers(), **(headers or {})}, timeout=self.timeout
        )

    def same_origin(self, url: str) -> bool:
        """A pagination link must stay on the configured server (the token goes with it)."""
        mine, theirs = urlsplit(self.base_url), urlsplit(url)
        return (theirs.scheme, theirs.netloc) in (("", ""), (mine.scheme, mine.netloc))
