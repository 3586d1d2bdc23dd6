"""The API's request rate limit, as DRF's throttling hook (`DEFAULT_THROTTLE_CLASSES`): it
runs in every API view, after authentication and before the view writes anything."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from agents.models import ApiKey
from agents.services import limits


class RequestRateLimit(BaseThrottle):
    """Counts the request against its caller's requests per minute (see `limits`); past it,
    `RateLimited` is the answer (429 with `Retry-After` and `RateLimit-*`)."""

    def allow_request(self, request: Request, view: Any) -> bool:
        if not request.user or not request.user.is_authenticated:
            return True  # nobody to count against (public endpoints)
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        quota = limits.check_request(request.user, api_key)
        if quota is not None:
            request.rate_limit_headers = quota.headers()  # type: ignore[attr-defined]  # read by CallerAPIView
        return True
