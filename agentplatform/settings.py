"""Settings, driven by environment variables. Every variable is listed in docs/reference/configuration.md.

With no variables set, the platform runs on embedded defaults: SQLite in a data
directory, a generated secret key kept there, and the built-in demo agent.
"""

from __future__ import annotations

from pathlib import Path

from agentplatform.appsettings import from_environment
from agentplatform.conf import PlatformSettings
from agentplatform.env import (
    database_from_url,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_pair,
    env_str,
    replica_databases,
    secret_key,
)
from context.conf import ContextSettings
from tracing.conf import TracingSettings

BASE_DIR = Path(__file__).resolve().parent.parent
# (set but empty is unset: `AGENTPLATFORM_DATA_DIR=` would otherwise make the current directory the data dir)
DATA_DIR = Path(env_str("AGENTPLATFORM_DATA_DIR", "") or Path.cwd() / ".agentplatform").resolve()
# Made where first needed (the secret key, the database, `up`, the trace store), not here.
SECRET_KEY = secret_key(DATA_DIR)
# Earlier keys, to rotate DJANGO_SECRET_KEY: they still check sessions and signatures and
# decrypt stored secrets until `manage.py reencrypt_secrets` re-encrypted them under the new key.
SECRET_KEY_FALLBACKS = env_list("DJANGO_SECRET_KEY_FALLBACKS", [])
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# Behind a TLS-terminating proxy (docs/guides/deploying.md, "Production settings"). Off by
# default: the embedded mode serves plain HTTP on this machine.
SECURE_PROXY_SSL_HEADER = env_pair("DJANGO_SECURE_PROXY_SSL_HEADER")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health/$"]  # a load balancer's health check may speak plain HTTP
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("DJANGO_CSRF_COOKIE_SECURE", False)

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
    "agentplatform.audit",  # after axes: its sign-in receivers read what axes decided
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
    "agentplatform.admin_site.LazyMessageMiddleware",  # Django's, its store made only when used
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # a locked-out sign-in gets the lockout page (429)
    "agentplatform.replicas.ReadYourWritesMiddleware",  # a caller that wrote reads from the primary for a while
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
# Read replicas (docs/guides/read-replicas.md): only the reads that say they tolerate lag use one.
REPLICA_DATABASES = replica_databases(env_list("DATABASE_REPLICA_URLS", []), primary=DATABASES["default"])
DATABASES.update(REPLICA_DATABASES)
DATABASE_ROUTERS = ["agentplatform.replicas.PrimaryRouter"]
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
# Static files are served from the installed apps (no collectstatic needed); `collectstatic`
# writes to DJANGO_STATIC_ROOT when set, and WhiteNoise then serves that directory first.
STATIC_ROOT = env_str("DJANGO_STATIC_ROOT", "") or None
WHITENOISE_USE_FINDERS = True

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

# The apps' knobs: each dataclass holds the defaults and names the variables; only what the
# environment sets is passed here (a settings module of your own may set any field).
AGENTPLATFORM = from_environment(PlatformSettings)
if REPLICA_DATABASES:
    AGENTPLATFORM["REPLICAS"] = list(REPLICA_DATABASES)
AGENTPLATFORM_CONTEXT = from_environment(ContextSettings)  # stored credentials: ENCRYPTION_KEY

# Redis: Celery's broker and run-completion signals. `manage.py up` starts an embedded one.
REDIS_URL = env_str("REDIS_URL", "") or "redis://127.0.0.1:6379/0"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "") or REDIS_URL
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
if CELERY_BROKER_URL.partition("://")[0] in ("redis", "rediss"):
    CELERY_BROKER_TRANSPORT = "agentplatform.broker:Transport"  # one redis-py client per channel, not per command
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
_PLATFORM = PlatformSettings(**AGENTPLATFORM)  # the intervals of the entries below
CELERY_BEAT_SCHEDULE = {
    "reap-runs": {
        "task": "agents.reap_runs",
        "schedule": env_float("AGENTPLATFORM_REAP_INTERVAL_SECONDS", 30.0, minimum=1.0),
        "options": {"queue": "maintenance", "expires": 25},
    },
    "requeue-webhooks": {
        "task": "approvals.requeue_webhooks",
        "schedule": _PLATFORM.WEBHOOK_REQUEUE_SECONDS,
        "options": {"queue": "maintenance", "expires": 60},
    },
    "expire-approvals": {
        "task": "approvals.expire_approvals",
        "schedule": env_float("AGENTPLATFORM_APPROVAL_EXPIRY_INTERVAL", 30.0, minimum=1.0),
        "options": {"queue": "maintenance", "expires": 25},
    },
    "purge-expired": {  # retention: does nothing unless a *_RETENTION_DAYS setting is set
        "task": "agents.purge_expired",
        "schedule": _PLATFORM.RETENTION_INTERVAL,
        "options": {"queue": "maintenance", "expires": _PLATFORM.RETENTION_INTERVAL / 2},
    },
}

# Tracing's knobs, likewise: OpenTelemetry spans stored in ClickHouse. Embedded: chDB in the
# data directory, opened by the span sink that `up` starts; distributed: CLICKHOUSE_URL.
TRACING = {**from_environment(TracingSettings), "REDIS_URL": REDIS_URL}

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
