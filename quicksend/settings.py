"""Django settings for QuickSend. Everything variable comes from the environment (quicksend/config.py)."""

from __future__ import annotations

import os
from datetime import timedelta

import environ

from quicksend import config as qs_config

CONFIG = qs_config.load_or_exit()
BASE_DIR = qs_config.BASE_DIR
VAR_DIR = qs_config.VAR_DIR
QUICKSEND_MODE = CONFIG.mode
EMBEDDED = CONFIG.embedded

SECRET_KEY = CONFIG.secret_key
DEBUG = CONFIG.debug
ALLOWED_HOSTS = CONFIG.allowed_hosts
PUBLIC_BASE_URL = CONFIG.public_base_url
QUICKSEND_ENCRYPTION_KEYS = CONFIG.encryption_keys
env = environ.Env()

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_htmx",
    "axes",
    "tenancy",
    "crm",
    "messaging",
    "sandbox",
    "templates_app",
    "campaigns",
    "frontend",
    "quicksend",  # project-level commands (healthcheck)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tenancy.middleware.TenantMiddleware",
    "tenancy.embed_auth.EmbedResponseMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "quicksend.errors.PageErrorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Axes must be last: it turns a lockout into the lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "quicksend.urls"
WSGI_APPLICATION = "quicksend.wsgi.application"
ASGI_APPLICATION = "quicksend.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "frontend" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tenancy.context_processors.tenancy",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------------
if CONFIG.database_url:
    _db = environ.Env.db_url_config(CONFIG.database_url)
    _db["ENGINE"] = "django.db.backends.postgresql"
    # psycopg 3 with Django's own connection pool (docs/architecture.md).
    _db["CONN_MAX_AGE"] = 0
    # With the pool, this makes Django give it ``check=ConnectionPool.check_connection``: a pooled
    # connection the server closed meanwhile (a restart, a failover, pg_terminate_backend) is found out and
    # replaced before it is handed out, instead of failing the request that gets it.
    _db["CONN_HEALTH_CHECKS"] = True
    _db.setdefault("OPTIONS", {})
    _db["OPTIONS"]["pool"] = {
        "min_size": env.int("DB_POOL_MIN", default=1),
        "max_size": env.int("DB_POOL_MAX", default=10),
        "timeout": env.int("DB_POOL_TIMEOUT", default=10),
    }
    _db["OPTIONS"]["connect_timeout"] = 5
    DATABASES = {"default": _db}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env.str("QUICKSEND_SQLITE_PATH", default=str(VAR_DIR / "quicksend.sqlite3")),
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            # A file (not :memory:) so a server started by a browser test sees the test data.
            "TEST": {"NAME": str(VAR_DIR / "test.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Threads per web process that run Django's requests (quicksend.http_handler): requests beyond these wait
# for one, and the ones in them wait for a database connection beyond DB_POOL_MAX.
WEB_THREADS = env.int("WEB_THREADS", default=32)

# --- Redis: cache, channel layer, Celery ---------------------------------------------------------------
# Parallel test workers share one Redis: give each its own key space and queue.
_WORKER_SUFFIX = os.environ.get("PYTEST_XDIST_WORKER", "")
if CONFIG.redis_url:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CONFIG.redis_url,
            "KEY_PREFIX": env.str("QUICKSEND_CACHE_PREFIX", default="qs") + _WORKER_SUFFIX,
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [CONFIG.redis_url],
                "prefix": env.str("QUICKSEND_CHANNEL_PREFIX", default="qs") + _WORKER_SUFFIX,
            },
        }
    }
    CELERY_BROKER_URL = CONFIG.redis_url
    CELERY_TASK_ALWAYS_EAGER = False
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CELERY_BROKER_URL = "memory://"
    CELERY_TASK_ALWAYS_EAGER = True
    CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = "quicksend" + _WORKER_SUFFIX
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TIMEZONE = "UTC"
# Task modules outside the apps' tasks.py that autodiscovery would not find.
CELERY_IMPORTS = ["quicksend.health"]

# --- Auth -----------------------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# django-axes (docs/organizations.md "Logging in"): failures are counted per username AND per client address,
# separately. 10 failures for one username (from anywhere), or 10 from one address (whatever usernames it
# tries), within the cool-off lock that username, or that address, for the cool-off. Attempts made while
# locked are refused without being counted, so hammering a locked account does not prolong its lock: it
# lifts by itself at the end of the cool-off, and a stranger can never lock an admin out for good. A success
# does not wipe the count: otherwise a client holding one valid account could reset its address's count
# between guesses at other accounts.
AXES_FAILURE_LIMIT = env.int("QUICKSEND_LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("QUICKSEND_LOGIN_COOLOFF_MINUTES", default=10))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = False
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "tenancy.lockout.locked_out"
AXES_VERBOSE = False

# --- Security -------------------------------------------------------------------------------------------
# Cookies (HttpOnly session, SameSite=Lax, Secure over https) and HSTS over https: quicksend/config.py.
globals().update(qs_config.security_settings(PUBLIC_BASE_URL))
# No page may be framed, except the embed pages by their organization's CRM origins (docs/embed.md).
X_FRAME_OPTIONS = "DENY"
if not EMBEDDED:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    CSRF_TRUSTED_ORIGINS = [PUBLIC_BASE_URL]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "connect-src": ["'self'", "ws:", "wss:"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# Honour @sensitive_variables / @sensitive_post_parameters even with DEBUG on: no secret on error pages.
DEFAULT_EXCEPTION_REPORTER_FILTER = "quicksend.error_reports.AlwaysSafeExceptionReporterFilter"

# --- I18N / static --------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# --- API ------------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenancy.authentication.ApiTokenAuthentication",
        # The embedded record widget's session (docs/embed.md): before the login session, never instead of it.
        "tenancy.embed_auth.EmbedSessionAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tenancy.permissions.IsOrgMember"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "quicksend.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "quicksend.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "QuickSend API",
    "DESCRIPTION": "REST API of QuickSend. Authenticate with `Authorization: Token <key>` (create keys on "
    "your profile page or with `manage.py create_api_token`). Every object is scoped to the organization "
    "the token belongs to.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Choice sets shared by several serializers get one name each (not a hash suffix, not a neighbour's).
    "ENUM_NAME_OVERRIDES": {
        "RecordTypeEnum": "crm.models.RecordType",
        "TemplateStatusEnum": "templates_app.models.MessageTemplate.Status",
        "TemplateVisibilityEnum": "templates_app.models.MessageTemplate.Visibility",
    },
    # Tags by area and bounded path ids (quicksend/openapi.py), after the default enum post-processing.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "quicksend.openapi.postprocess",
    ],
}

# --- Logging --------------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "quicksend.logging.RedactSecretsFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "axes": {"level": "WARNING"},
        # One line per task run is noise (the heartbeat runs every 15 s); failures still log as errors.
        "celery.app.trace": {"level": "WARNING"},
        # twilio-python logs ~10 INFO lines per request (headers included): too much for every send.
        "twilio.http_client": {"level": "WARNING"},
    },
}

# --- QuickSend ------------------------------------------------------------------------------------------
QUICKSEND_HEARTBEAT_MAX_AGE = env.int("QUICKSEND_HEARTBEAT_MAX_AGE", default=120)
QUICKSEND_SANDBOX = EMBEDDED or env.bool("QUICKSEND_SANDBOX", default=False)
# Where the twilio library sends REST calls: None means the real Twilio. The embedded mode talks to the
# sandbox mounted in the same server.
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default="") or (
    f"{PUBLIC_BASE_URL}/sandbox" if EMBEDDED else None
)
TWILIO_HTTP_TIMEOUT = env.float("TWILIO_HTTP_TIMEOUT", default=10.0)
# CSV imports of CRM records: larger uploads are refused before they are read (docs/crm.md).
CRM_IMPORT_MAX_BYTES = env.int("CRM_IMPORT_MAX_BYTES", default=50 * 1024 * 1024)
# Sending (docs/messaging.md "Sending"): segments per second per sender number type, e.g.
# {"local": 1, "tollfree": 3, "shortcode": 100}; the first retry's backoff; how long media URLs stay valid.
QUICKSEND_SEND_RATES = env.json("QUICKSEND_SEND_RATES", default={})
QUICKSEND_SEND_CONCURRENCY = env.int("QUICKSEND_SEND_CONCURRENCY", default=8)
QUICKSEND_SEND_RETRY_BASE_SECONDS = env.float("QUICKSEND_SEND_RETRY_BASE_SECONDS", default=2.0)
# A hand-over younger than this may still be in flight in another worker: the task waits before reconciling.
QUICKSEND_SEND_IN_FLIGHT_SECONDS = env.float("QUICKSEND_SEND_IN_FLIGHT_SECONDS", default=30.0)
# How long another process may go on using an organization's record-type configs after a change
# (quicksend/org_cache.py; the process that saved it sees the change at once).
QUICKSEND_ORG_CACHE_SECONDS = env.float("QUICKSEND_ORG_CACHE_SECONDS", default=2.0)
QUICKSEND_MEDIA_URL_MAX_AGE = env.int("QUICKSEND_MEDIA_URL_MAX_AGE", default=12 * 3600)
# History sync leaves messages younger than this to its next run (messaging/twilio/history_sync.py).
QUICKSEND_HISTORY_SYNC_SETTLE_SECONDS = env.int("QUICKSEND_HISTORY_SYNC_SETTLE_SECONDS", default=600)
