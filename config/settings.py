"""Gatehouse settings.

The environment is read once, here, with django-environ (`.env` is read when present).
Code elsewhere reads ``django.conf.settings`` when it runs, never at import time.
See the README's "Settings" table and ../shared/CONTRACT.md.
"""
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Put a long random value in the environment or in .env "
        "(`make run` writes one for you)."
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "accounts.admin_apps.GatehouseAdminConfig",  # django.contrib.admin with Gatehouse's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "tenants",
    "accounts",
    "mfa",
    # After accounts, whose db_worker command (notices re-queued) overrides the library's.
    "django_tasks",
    "django_tasks_db",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language: Accept-Language, else the tenant's default (config/middleware.py).
    "config.middleware.TenantLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several gunicorn workers on one SQLite file: take the write lock when a transaction
    # starts (no "database is locked" on upgrade), wait for it, and let readers run beside
    # the writer (WAL).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Persistent connections, checked before a request reuses one (a worker rides through a
    # database restart). Django's client-side binding: no server-side prepared statements,
    # so PgBouncer in transaction mode works too.
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://gatehouse")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
# Only our tenant-aware backend: Django's ModelBackend looks users up by username alone,
# which is ambiguous once two tenants share a username.
AUTHENTICATION_BACKENDS = ["accounts.backends.TenantBackend"]
# Usernames are unique per tenant (a named UniqueConstraint), not globally.
SILENCED_SYSTEM_CHECKS = ["auth.W004"]
LOGIN_URL = "operator-login"

ARGON2_MEMORY_KIB = env.int("ARGON2_MEMORY_KIB", default=19456)
ARGON2_TIME_COST = env.int("ARGON2_TIME_COST", default=2)
ARGON2_PARALLELISM = env.int("ARGON2_PARALLELISM", default=1)
PASSWORD_HASHERS = [
    "accounts.hashers.Argon2idHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# The password rules (accounts/passwords.py): the tenant's minimum length, at most 1,024
# characters, not a common password, not like the username or email. Every place that sets a
# password uses them (pages, API, admin, create_user).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "accounts.passwords.TenantMinimumLengthValidator"},
    {"NAME": "accounts.passwords.MaximumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
     "OPTIONS": {"user_attributes": ("username", "email")}},
]
# A reset link's lifetime is the tenant's passwordResetTtlSeconds; this is its ceiling.
PASSWORD_RESET_TIMEOUT = 86400

LANGUAGE_CODE = "en"
# Pages, mails, API `detail` sentences and admin help in these languages (locale/*/LC_MESSAGES).
LANGUAGES = [("en", "English"), ("de", "Deutsch"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Dates and times shown with seconds and the time zone, in every language (config/formats/).
FORMAT_MODULE_PATH = ["config.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Mail
# --- Operations (issue 22): no silent console mail --------------------------------------
# Outside DEBUG, an unset EMAIL_URL is an error: console mail would print sign-in codes
# into the server's log. ``console://`` (or django-environ's ``consolemail://``) chooses it
# explicitly; ``make run`` (DEBUG=true) keeps console mail as the default.
_EMAIL_URL = env.str("EMAIL_URL", default="")
if not _EMAIL_URL and not DEBUG:
    raise ImproperlyConfigured(
        "EMAIL_URL is not set, and with DEBUG=false console mail would print sign-in codes into the log: "
        "set EMAIL_URL=smtp+tls://user:password@host:587 (or EMAIL_URL=console:// to choose console mail)."
    )
if not _EMAIL_URL or _EMAIL_URL.startswith("console://"):
    _EMAIL_URL = "consolemail://"
vars().update(env.email_url_config(_EMAIL_URL))
# --- end of Operations (mail) ------------------------------------------------------------
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="no-reply@localhost")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)

# Security notices leave through a durable queue in the database (django-tasks), sent by
# `manage.py db_worker` beside the web processes (accounts/notifications.py).
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}

# Cookies and headers
SECURE_COOKIES = env.bool("SECURE_COOKIES", default=not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=60 * 60 * 12)
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("TRUST_X_FORWARDED_PROTO", default=False) else None
)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
NUM_PROXIES = env.int("NUM_PROXIES", default=0)

# Request bodies over 1 MiB are refused (413 on the API).
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

# MFA
MFA_ENCRYPTION_KEYS = env.list("MFA_ENCRYPTION_KEYS", default=[])
MFA_PENDING_SECONDS = 600
MFA_RECOVERY_CODE_COUNT = 10

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.api.authentication.TenantJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "accounts.api.errors.exception_handler",
    # No OPTIONS metadata: DRF's would build serializers our views do not declare (a 500);
    # OPTIONS is not part of the API, so it answers 405 like any other unsupported method.
    "DEFAULT_METADATA_CLASS": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "NUM_PROXIES": NUM_PROXIES,
    "DEFAULT_THROTTLE_RATES": {
        "auth": env.str("THROTTLE_AUTH_RATE", default="60/min"),
    },
}

# --- Tokens (issue 20: every JWT is signed with its tenant's own key, tenants/signing.py) ---
# The JWT_ALGORITHM / JWT_PRIVATE_KEY / JWT_PUBLIC_KEY settings are gone (HS256 with
# SECRET_KEY no longer exists); a deployment that still sets JWT_ALGORITHM is told so.
if env.str("JWT_ALGORITHM", default=""):
    raise ImproperlyConfigured(
        "JWT_ALGORITHM is no longer a setting: every tenant signs its tokens with its own key "
        "(see the README, 'Signing keys'). Remove JWT_ALGORITHM, JWT_PRIVATE_KEY and JWT_PUBLIC_KEY."
    )
ACCESS_TOKEN_SECONDS = env.int("ACCESS_TOKEN_SECONDS", default=300)
REFRESH_TOKEN_SECONDS = env.int("REFRESH_TOKEN_SECONDS", default=86400)
# A refresh-token chain ends this long after the sign-in that began it, however often it is
# refreshed (each refresh token lives REFRESH_TOKEN_SECONDS, never past the chain's end).
REFRESH_TOKEN_MAX_SECONDS = env.int("REFRESH_TOKEN_MAX_SECONDS", default=30 * 24 * 3600)
# ID tokens (OpenID Connect) live this long.
OIDC_ID_TOKEN_SECONDS = env.int("OIDC_ID_TOKEN_SECONDS", default=300)
# --- end of tokens ---

# --- OpenID Connect provider and CORS (issue 20: oidc/, django-oauth-toolkit, django-cors-headers) ---
# Each tenant is an OpenID Provider at /tenant/ID/ (oidc/urls.py); its clients are
# oidc.Application rows and its keys tenants.SigningKey rows, so nothing here is per tenant.
INSTALLED_APPS += ["oauth2_provider", "corsheaders", "oidc"]
# CorsMiddleware must come before CommonMiddleware (django-cors-headers' rule).
MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.common.CommonMiddleware"), "corsheaders.middleware.CorsMiddleware")
OAUTH2_PROVIDER_APPLICATION_MODEL = "oidc.Application"
OAUTH2_PROVIDER_GRANT_MODEL = "oidc.Grant"
OAUTH2_PROVIDER = {
    "OIDC_ENABLED": True,
    "OAUTH2_VALIDATOR_CLASS": "oidc.validators.TenantOAuth2Validator",
    "APPLICATION_ADMIN_CLASS": "oidc.admin.ClientAdmin",
    "SCOPES": {"openid": "Sign you in", "profile": "Your username", "email": "Your email address"},
    "DEFAULT_SCOPES": ["openid"],
    "OIDC_RESPONSE_TYPES_SUPPORTED": ["code"],
    # PKCE: required for public clients, checked when sent by confidential ones
    # (TenantOAuth2Validator.is_pkce_required); S256 only.
    "PKCE_REQUIRED": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https", "http"],
    "ALLOWED_SCHEMES": ["https", "http"],
    # Access tokens are JWTs signed with the tenant's key (RFC 9068, oidc.tokens, given to each
    # request's server by oidc.views); refresh tokens stay random strings (without this,
    # oauthlib would make them with the access tokens' generator too).
    "REFRESH_TOKEN_GENERATOR": "oauthlib.oauth2.rfc6749.tokens.random_token_generator",
    "ACCESS_TOKEN_EXPIRE_SECONDS": ACCESS_TOKEN_SECONDS,
    "REFRESH_TOKEN_EXPIRE_SECONDS": REFRESH_TOKEN_SECONDS,
    "ID_TOKEN_EXPIRE_SECONDS": OIDC_ID_TOKEN_SECONDS,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "OIDC_RP_INITIATED_LOGOUT_ENABLED": True,
    "OIDC_RP_INITIATED_LOGOUT_ALWAYS_PROMPT": False,
    "OIDC_RP_INITIATED_LOGOUT_DELETE_TOKENS": True,
    "REQUEST_APPROVAL_PROMPT": "auto",
    "OIDC_JWKS_MAX_AGE_SECONDS": 300,
    # RFC 9700 (OAuth 2.0 Security BCP): the compliant behaviours.
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,  # S256 only
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,  # access and refresh tokens stored as SHA-256 checksums only
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,  # no access token in a query string
}
# DOT's W005 (RFC 9207 `iss` in the authorization response): DOT can only add one project-wide
# issuer; oidc.views.AuthorizeView adds the tenant's own. DOT's W008 (http redirect URIs):
# http is accepted only for loopback hosts (RFC 8252 §7.3), by oidc.models.Application.clean.
SILENCED_SYSTEM_CHECKS = [*SILENCED_SYSTEM_CHECKS, "oauth2_provider.W005", "oauth2_provider.W008"]
# CORS: no origin is allowed by settings; oidc.cors allows a tenant's clients' origins on
# that tenant's REST API and token, userinfo and revocation endpoints. No cookies.
# (Discovery and the JWKS are public: they answer "Access-Control-Allow-Origin: *" themselves.)
CORS_URLS_REGEX = r"^/tenant/[a-z0-9-]+/(v2/|oauth/(token|userinfo|revoke)/)"
CORS_ALLOW_CREDENTIALS = False
# A browser app may read how long to wait after a 429 or a 503 (not readable cross-origin otherwise).
CORS_EXPOSE_HEADERS = ["Retry-After"]
CORS_PREFLIGHT_MAX_AGE = 600
# --- end of OpenID Connect provider and CORS ---

SPECTACULAR_SETTINGS = {
    "TITLE": "Gatehouse API",
    "DESCRIPTION": (
        "Multi-tenant authentication: password, then a second factor (authenticator app, "
        "emailed code or passkey), then JWTs. Every path is under `/tenant/{tenant_id}/v2/`; the demo "
        "tenant of `make run` is `demo`. Start with the Sign-in calls: `auth/login`, then "
        "`auth/mfa/verify`, and paste the `accessToken` under Authorize (it is kept across reloads)."
    ),
    "VERSION": "2.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "ENUM_NAME_OVERRIDES": {
        "MfaMethodEnum": "accounts.models.MfaMethod",
        # The second factors: the MFA challenge's method and the tenant's allowedMethods.
        "ChallengeMethodEnum": ["totp", "email", "webauthn"],
    },
    # No call to the public validator badge service: the docs work with no internet.
    # persistAuthorization: the token pasted under Authorize survives a reload.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None, "persistAuthorization": True},
    # The sign-in calls first (they give the token the others need), each group in URL order.
    "SORT_OPERATIONS": "accounts.api.schema.sign_in_first",
    "TAGS": [
        {"name": "Sign-in", "description": "Password, second factor, tokens: the calls that need no token."},
        {"name": "Users", "description": "A tenant admin's user management."},
        {"name": "Settings", "description": "The tenant's MFA and lockout policy."},
    ],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "accounts.api.schema.strict_request_schemas"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"()": "config.logging.OneLineFormatter", "format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Never log request bodies: they hold passwords and codes.
        "django.request": {"level": "ERROR"},
        "django.security.DisallowedHost": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}

# --- Operations (issue 22): probes, metrics, logs -----------------------------------------
# /healthz, /readyz and /metrics are answered by config.middleware.ProbesMiddleware, ahead of
# the host check, the HTTPS redirect, sessions and the per-IP limit: a balancer probing by IP
# over plain HTTP gets its answer (README, "Deploying").
MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "config.middleware.RequestIdMiddleware",  # first of ours: every later log line has the id
    "config.middleware.ProbesMiddleware",
    *MIDDLEWARE,
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]
# /metrics answers only ``Authorization: Bearer <METRICS_TOKEN>``; unset: 404. With several
# gunicorn workers, PROMETHEUS_MULTIPROC_DIR (read by prometheus_client itself) makes the
# numbers the sum of all of them (gunicorn.conf.py).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# The X-Request-ID of an incoming request is used only when the proxy in front sets it (and
# overwrites a client's); otherwise every request gets a fresh id.
TRUST_X_REQUEST_ID = env.bool("TRUST_X_REQUEST_ID", default=False)
# /readyz must answer quickly when PostgreSQL or Redis is unreachable, not hang on a connect.
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", env.int("DB_CONNECT_TIMEOUT", default=5))
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    CACHES["default"].setdefault("OPTIONS", {}).setdefault("socket_connect_timeout", env.int("CACHE_CONNECT_TIMEOUT", default=3))
    CACHES["default"]["OPTIONS"].setdefault("socket_timeout", env.int("CACHE_CONNECT_TIMEOUT", default=3))
# Probes do not follow SECURE_SSL_REDIRECT: a balancer checks over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# HSTS (SECURE_HSTS_SECONDS, read above): the README's production example sets it, with
# subdomains. Preloading is not: the browsers' preload list takes a whole registrable domain
# (example.com, not auth.example.com) and is hard to leave; that is the domain owner's call,
# so `check --deploy` does not ask for it here.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = [*SILENCED_SYSTEM_CHECKS, "security.W021"]
# Logs: LOG_FORMAT=plain (default, one line per record) or json (one JSON object per line);
# both carry the request id, and one access line per request (config.middleware).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured("LOG_FORMAT must be plain or json.")
LOGGING["filters"] = {"request_id": {"()": "config.logging.RequestIdFilter"}}
LOGGING["formatters"]["plain"]["format"] = "%(asctime)s [%(request_id)s] %(levelname)s %(name)s %(message)s"
LOGGING["formatters"]["json"] = {"()": "config.logging.JsonFormatter"}
LOGGING["handlers"]["console"].update(formatter=LOG_FORMAT, filters=["request_id"])
LOGGING["loggers"]["gatehouse.access"] = {"level": "INFO"}
# --- end of Operations ---------------------------------------------------------------------
