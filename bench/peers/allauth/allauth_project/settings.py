"""The second peer: a minimal Django project signing in with django-allauth.

Its ``account`` app (password sign-in pages), ``mfa`` (TOTP and recovery codes) and
``headless`` (the JSON API, clients "browser" and "app"), configured the way allauth's
documentation shows; what it shares with the first peer (Argon2id with Gatehouse's parameters,
DATABASE_URL, database sessions) is in ../../peer_settings.py; a Redis
cache (allauth keeps its rate limits and its TOTP replay markers there), DEBUG=false,
served by gunicorn like the first peer.

Headless token strategy: JWT (``JWTTokenStrategy``), so the "app" client gets an access
token and a refresh token after sign-in and ``/_allauth/app/v1/tokens/refresh`` works; with
allauth's default (``SessionTokenStrategy``) the app client gets a session token only and
there is no refresh. HS256 signed with SECRET_KEY, as Gatehouse's default JWT_ALGORITHM.
"""
from peer_settings import *  # noqa: F401,F403
from peer_settings import DJANGO_APPS, DJANGO_MIDDLEWARE, env

INSTALLED_APPS = [*DJANGO_APPS, "allauth", "allauth.account", "allauth.mfa", "allauth.headless"]
MIDDLEWARE = [*DJANGO_MIDDLEWARE, "allauth.account.middleware.AccountMiddleware"]
AUTHENTICATION_BACKENDS = ["allauth.account.auth_backends.AuthenticationBackend"]
ROOT_URLCONF = "allauth_project.urls"
WSGI_APPLICATION = "allauth_project.wsgi.application"
# Django's own Redis backend (redis-py); the bench's Redis db, keys of their own.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env.str("ALLAUTH_PEER_REDIS_URL", default="redis://127.0.0.1:6379/14"),
        "KEY_PREFIX": "allauth-peer",
    }
}
LOGIN_URL = "/accounts/login/"

# --- allauth ---------------------------------------------------------------------------------
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "email", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
# Usernames are stored lowercased and looked up with `username IN (...)` (an index scan);
# allauth's default (True) looks them up with `UPPER(username) = UPPER(%s)`, a sequential
# scan on PostgreSQL without an expression index.
ACCOUNT_PRESERVE_USERNAME_CASING = False
# Every bench request comes from one address: allauth's per-IP limits (login 30/m/ip,
# login_failed 10/m/ip) are raised, as the bench raises Gatehouse's THROTTLE_AUTH_RATE.
# They stay on, so their cache round trips are still paid on every sign-in.
ACCOUNT_RATE_LIMITS = {"login": "1000000/m/ip", "login_failed": "1000000/m/ip,1000000/5m/key"}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
# ±1 step, as Gatehouse and the first peer accept (allauth's default is 0: the current step
# only). Replay: allauth marks each used code in the cache for the whole window.
MFA_TOTP_TOLERANCE = 1
HEADLESS_CLIENTS = ("browser", "app")
HEADLESS_TOKEN_STRATEGY = "allauth.headless.tokens.strategies.jwt.JWTTokenStrategy"
HEADLESS_JWT_ALGORITHM = "HS256"  # signed with SECRET_KEY when no private key is given
HEADLESS_JWT_ACCESS_TOKEN_EXPIRES_IN = 300
HEADLESS_JWT_REFRESH_TOKEN_EXPIRES_IN = 86400
HEADLESS_FRONTEND_URLS = {}
