"""The peer: a minimal Django project signing in with django-two-factor-auth + django-otp.

Configured the way their documentation shows, with the same Argon2id parameters as
Gatehouse; what it shares with the second peer is in ../peer_settings.py.
"""
from peer_settings import *  # noqa: F401,F403
from peer_settings import DJANGO_APPS, DJANGO_MIDDLEWARE

INSTALLED_APPS = [
    *DJANGO_APPS,
    "django_otp",
    "django_otp.plugins.otp_static",
    "django_otp.plugins.otp_totp",
    "two_factor",
]
MIDDLEWARE = [*DJANGO_MIDDLEWARE]
MIDDLEWARE.insert(MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1, "django_otp.middleware.OTPMiddleware")
ROOT_URLCONF = "peer_project.urls"
WSGI_APPLICATION = "peer_project.wsgi.application"
LOGIN_URL = "two_factor:login"
# Deterministic windows for the bench's scheduler: the drift django-otp learns would move
# the accepted window by a step. Costs nothing either way (the device row is saved anyway).
OTP_TOTP_SYNC = False
