"""The peer: a minimal Django project signing in with django-two-factor-auth + django-otp.

Configured the way their documentation shows, with the same Argon2id parameters as
Gatehouse (ARGON2_* from the environment), the same kind of database (DATABASE_URL) and
database-backed sessions, DEBUG=false, served by gunicorn with one worker per core.
"""
import environ

env = environ.Env()
DEBUG = False
SECRET_KEY = env.str("SECRET_KEY")
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_static",
    "django_otp.plugins.otp_totp",
    "two_factor",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "peer_project.urls"
WSGI_APPLICATION = "peer_project.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {"default": env.db("DATABASE_URL")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = 60
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["peer_project.hashers.Argon2idHasher"]
SESSION_ENGINE = "django.contrib.sessions.backends.db"
LOGIN_URL = "two_factor:login"
LOGIN_REDIRECT_URL = "/done/"
# Deterministic windows for the bench's scheduler: the drift django-otp learns would move
# the accepted window by a step. Costs nothing either way (the device row is saved anyway).
OTP_TOTP_SYNC = False
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
