"""Settings, driven by environment variables. Every variable is listed in docs/reference/configuration.md.

With no variables set, the platform runs on embedded defaults: SQLite in a data
directory, a generated secret key kept there, and the built-in demo agent.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from agentplatform.env import database_from_url, env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("AGENTPLATFORM_DATA_DIR", str(Path.cwd() / ".agentplatform"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    key = env_str("DJANGO_SECRET_KEY", "")
    if key:
        return key
    path = DATA_DIR / "secret_key"  # embedded mode: generated once, kept with the data
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# Daphne serves the ASGI application (`up`, or `daphne agentplatform.asgi:application`), but is
# not an installed app: as one, it would load Twisted into every process (the worker, every
# management command) only to make `runserver` serve ASGI; `up` is the development server.
INSTALLED_APPS = [
    "agentplatform.apps.PlatformAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "agentplatform.apps.PlatformConfig",
    "tracing",
    "context",
    "approvals",
    "agents",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # a locked-out sign-in gets the lockout page (429)
]

ROOT_URLCONF = "agentplatform.urls"
ASGI_APPLICATION = "agentplatform.asgi.application"
WSGI_APPLICATION = "agentplatform.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": database_from_url(env_str("DATABASE_URL", ""), sqlite_default=DATA_DIR / "db.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True  # embedded mode serves static files without collectstatic

LOGIN_URL = "admin:login"

# Admin sign-in throttling (django-axes; agentplatform/signin.py reports the failures Django does
# not). Axes refuses a locked-out username or address before any password is checked. The limits
# are the platform's settings (AGENTPLATFORM_ADMIN_LOCKOUT_*), read through agentplatform.signin.
# API keys never go through authenticate(): axes does not count or throttle them.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = "agentplatform.signin.failure_limit"
AXES_COOLOFF_TIME = "agentplatform.signin.cool_off"
AXES_CLIENT_IP_CALLABLE = "agentplatform.signin.client_ip"
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each on its own: a user from anywhere, an address for anyone
AXES_RESET_ON_SUCCESS = True  # a successful sign-in clears that user's and address's count
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # the cool-off runs from the last counted failure
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"
AXES_ENABLE_ACCESS_FAILURE_LOG = True  # every failed attempt is kept (Axes > Access failures)
AXES_SENSITIVE_PARAMETERS = ["otp_token"]  # masked, with the password, in the stored form data

DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("AGENTPLATFORM_MAX_REQUEST_BYTES", 1_048_576, minimum=1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "agents.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["agentplatform.api.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "agentplatform.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "agentplatform.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["agents.throttling.RequestRateLimit"],  # see agents.services.limits
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "agentplatform API",
    "DESCRIPTION": "Agents, sessions, runs and approvals. Authenticate with `Authorization: Bearer <api key>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "agents.models.RunStatus",
        "ApprovalStatusEnum": "approvals.models.ApprovalStatus",
        "WebhookEventEnum": "approvals.models.WebhookEvent",
    },
}

# Redis: Celery's broker and run-completion signals. `manage.py up` starts an embedded one.
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
# Seconds a Redis command (connecting included) may take: a Redis that stalls fails a request
# with 503 `redis_unavailable` instead of holding it. Blocking reads and subscriptions wait longer.
REDIS_TIMEOUT = env_float("AGENTPLATFORM_REDIS_TIMEOUT", 5.0, minimum=0.1)
_REDIS_TIMEOUTS = {"socket_timeout": REDIS_TIMEOUT, "socket_connect_timeout": REDIS_TIMEOUT}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [{"address": REDIS_URL, **_REDIS_TIMEOUTS}]},
    }
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60),
    **_REDIS_TIMEOUTS,  # a publish to a stalled broker fails (the reaper sends the run again) instead of hanging
}
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}
CELERY_TASK_ACKS_LATE = True  # a task is acknowledged when done: a worker that dies leaves it queued
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "runs"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_RESULT_EXPIRES = None  # no result backend, so no nightly `celery.backend_cleanup` entry for beat
# Beat reads its schedule from the database (django-celery-beat): agent schedules are rows that
# the API and the admin change while beat runs; the entries below are written there at its start.
CELERY_BEAT_SCHEDULER = "agentplatform.beat:DatabaseScheduler"  # django-celery-beat's, see there
CELERY_BEAT_SCHEDULE = {
    "reap-runs": {
        "task": "agents.reap_runs",
        "schedule": env_float("AGENTPLATFORM_REAP_INTERVAL_SECONDS", 30.0, minimum=1.0),
        "options": {"queue": "maintenance", "expires": 25},
    },
    "requeue-webhooks": {
        "task": "approvals.requeue_webhooks",
        "schedule": env_float("AGENTPLATFORM_WEBHOOK_REQUEUE_SECONDS", 120.0, minimum=1.0),
        "options": {"queue": "maintenance", "expires": 60},
    },
    "expire-approvals": {
        "task": "approvals.expire_approvals",
        "schedule": env_float("AGENTPLATFORM_APPROVAL_EXPIRY_INTERVAL", 30.0, minimum=1.0),
        "options": {"queue": "maintenance", "expires": 25},
    },
}

AGENTPLATFORM = {
    "AGENTS": env_list("AGENTPLATFORM_AGENTS", ["agentplatform.demo:agent"]),
    "MAX_INPUT_CHARS": env_int("AGENTPLATFORM_MAX_INPUT_CHARS", 32_000, minimum=1),
    "MAX_STEPS": env_int("AGENTPLATFORM_MAX_STEPS", 10, minimum=1),
    "HISTORY_LIMIT": env_int("AGENTPLATFORM_HISTORY_LIMIT", 50, minimum=1),
    "TOOL_TIMEOUT": env_float("AGENTPLATFORM_TOOL_TIMEOUT", 30.0, minimum=0.001),
    "MODEL_TIMEOUT": env_float("AGENTPLATFORM_MODEL_TIMEOUT", 60.0, minimum=0.001),
    "MODEL_MAX_RETRIES": env_int("AGENTPLATFORM_MODEL_MAX_RETRIES", 2),
    "RUN_WAIT_SECONDS": env_float("AGENTPLATFORM_RUN_WAIT_SECONDS", 60.0),
    "RUN_LEASE_SECONDS": env_float("AGENTPLATFORM_RUN_LEASE_SECONDS", 60.0, minimum=1.0),
    "RUN_REQUEUE_SECONDS": env_float("AGENTPLATFORM_RUN_REQUEUE_SECONDS", 120.0, minimum=1.0),
    "RUN_CONCURRENCY": env_int("AGENTPLATFORM_RUN_CONCURRENCY", 256, minimum=1),
    "RUN_DB_THREADS": env_int("AGENTPLATFORM_RUN_DB_THREADS", 8, minimum=1),
    "RUN_SYNC_THREADS": env_int("AGENTPLATFORM_RUN_SYNC_THREADS", 32, minimum=1),
    "RUN_SLOT_WAIT": env_float("AGENTPLATFORM_RUN_SLOT_WAIT", 5.0, minimum=0.0),
    "WORKER_DRAIN_SECONDS": env_float("AGENTPLATFORM_WORKER_DRAIN_SECONDS", 30.0, minimum=0.0),
    "WEB_DRAIN_SECONDS": env_float("AGENTPLATFORM_WEB_DRAIN_SECONDS", 10.0, minimum=0.0),
    "WEB_THREADS": env_int("AGENTPLATFORM_WEB_THREADS", 10, minimum=1),
    "WEB_QUEUE": env_int("AGENTPLATFORM_WEB_QUEUE", 100, minimum=0),
    "MAX_WAITERS": env_int("AGENTPLATFORM_MAX_WAITERS", 10_000, minimum=0),
    "MAX_QUEUED_RUNS": env_int("AGENTPLATFORM_MAX_QUEUED_RUNS", 10_000, minimum=1),
    "MAX_QUEUED_RUNS_PER_KEY": env_int("AGENTPLATFORM_MAX_QUEUED_RUNS_PER_KEY", 1_000, minimum=1),
    "RATE_LIMIT_REQUESTS_PER_MINUTE": env_int("AGENTPLATFORM_RATE_LIMIT_REQUESTS_PER_MINUTE", 0, minimum=0),
    "RATE_LIMIT_RUNS_PER_MINUTE": env_int("AGENTPLATFORM_RATE_LIMIT_RUNS_PER_MINUTE", 0, minimum=0),
    "RATE_LIMIT_CONCURRENT_RUNS": env_int("AGENTPLATFORM_RATE_LIMIT_CONCURRENT_RUNS", 0, minimum=0),
    "RATE_LIMIT_TOKENS_PER_DAY": env_int("AGENTPLATFORM_RATE_LIMIT_TOKENS_PER_DAY", 0, minimum=0),
    "API_DOCS_PUBLIC": env_bool("AGENTPLATFORM_API_DOCS_PUBLIC", False),
    # Stream the model's answer as message.delta events, stored at most every DELTA_INTERVAL s.
    "STREAM_DELTAS": env_bool("AGENTPLATFORM_STREAM_DELTAS", True),
    "DELTA_INTERVAL": env_float("AGENTPLATFORM_DELTA_INTERVAL", 0.1),
    "APPROVAL_TIMEOUT": env_float("AGENTPLATFORM_APPROVAL_TIMEOUT", 86_400.0, minimum=1.0),
    # Webhooks: refuse private, loopback and link-local addresses unless allowed (SSRF).
    "WEBHOOKS_ALLOW_PRIVATE": env_bool("AGENTPLATFORM_WEBHOOKS_ALLOW_PRIVATE", False),
    "WEBHOOK_TIMEOUT": env_float("AGENTPLATFORM_WEBHOOK_TIMEOUT", 5.0, minimum=0.001),
    "WEBHOOK_MAX_ATTEMPTS": env_int("AGENTPLATFORM_WEBHOOK_MAX_ATTEMPTS", 8, minimum=1),
    "WEBHOOK_RETRY_BASE": env_float("AGENTPLATFORM_WEBHOOK_RETRY_BASE", 30.0),
    "WEBHOOK_RETRY_MAX": env_float("AGENTPLATFORM_WEBHOOK_RETRY_MAX", 3_600.0),
    "WEBHOOK_REQUEUE_SECONDS": env_float("AGENTPLATFORM_WEBHOOK_REQUEUE_SECONDS", 120.0, minimum=1.0),
    # Keys that encrypt webhook secrets at rest (the first encrypts, all decrypt); default: from SECRET_KEY.
    "WEBHOOK_SECRETS_KEY": env_list("AGENTPLATFORM_WEBHOOK_SECRETS_KEY", []),
    "ADMIN_LOCKOUT_FAILURES": env_int("AGENTPLATFORM_ADMIN_LOCKOUT_FAILURES", 5, minimum=1),
    "ADMIN_LOCKOUT_COOLOFF": env_float("AGENTPLATFORM_ADMIN_LOCKOUT_COOLOFF", 900.0),
    "ADMIN_LOCKOUT_TRUSTED_PROXIES": env_int("AGENTPLATFORM_ADMIN_LOCKOUT_TRUSTED_PROXIES", 0),
}

# Context providers (the context app). Stored credentials are encrypted with ENCRYPTION_KEY.
AGENTPLATFORM_CONTEXT = {
    "PROVIDERS": env_list("AGENTPLATFORM_CONTEXT_PROVIDERS", []),
    "FILE_ROOTS": env_list("AGENTPLATFORM_CONTEXT_FILE_ROOTS", []),
    "MCP_COMMANDS": env_list("AGENTPLATFORM_CONTEXT_MCP_COMMANDS", []),
    "ENCRYPTION_KEY": env_str("AGENTPLATFORM_ENCRYPTION_KEY", ""),
    "CACHE": env_bool("AGENTPLATFORM_CONTEXT_CACHE", True),
}

# Tracing (tracing/conf.py): OpenTelemetry spans stored in ClickHouse. Embedded: chDB in the data
# directory, opened by the span sink that `up` starts; distributed: CLICKHOUSE_URL.
TRACING = {
    "ENABLED": env_bool("AGENTPLATFORM_TRACING", True),
    "SERVICE_NAME": env_str("OTEL_SERVICE_NAME", "agentplatform"),
    "CLICKHOUSE_URL": env_str("CLICKHOUSE_URL", ""),
    "CHDB_PATH": env_str("AGENTPLATFORM_CHDB_PATH", str(DATA_DIR / "clickhouse")),
    "REDIS_URL": REDIS_URL,
    "RETENTION_DAYS": env_int("AGENTPLATFORM_TRACE_RETENTION_DAYS", 30, minimum=1),
    "BUFFER_SPANS": env_int("AGENTPLATFORM_TRACE_BUFFER_SPANS", 20_000, minimum=1),
    "ROUTE_MAX_SPANS": env_int("AGENTPLATFORM_TRACE_ROUTE_MAX_SPANS", 1_000_000, minimum=1),
    "FLUSH_INTERVAL": env_float("AGENTPLATFORM_TRACE_FLUSH_INTERVAL", 1.0, minimum=0.01),
    "SINK_INTERVAL": env_float("AGENTPLATFORM_TRACE_SINK_INTERVAL", 5.0, minimum=0.01),
    "SINK_IDLE_SECONDS": env_float("AGENTPLATFORM_TRACE_SINK_IDLE_SECONDS", 60.0),
}

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"  # also the supervisor's, which runs without Django
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": LOG_FORMAT}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("AGENTPLATFORM_LOG_LEVEL", "INFO")},
    # The HTTP clients under the provider SDKs log every request at INFO, Celery every task
    # received and succeeded (two lines per run: what a run did is in its record and its trace;
    # a task that fails is still logged, at ERROR), and axes.apps a banner on every start.
    # (axes.handlers logs each sign-in failure, success and lockout with the username and address.)
    "loggers": {
        name: {"level": "WARNING"}
        for name in (
            *("httpx", "httpx2", "httpcore", "openai", "anthropic"),
            *("celery.worker.strategy", "celery.app.trace", "axes.apps"),
        )
    },
}
