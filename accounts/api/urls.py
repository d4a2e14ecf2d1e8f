"""``/tenant/<tenant_id>/v2/…``: paths as the contract and the product guide spell them
(``Users`` and ``Settings`` capitalised, no trailing slash)."""
from django.urls import path

from accounts.api import views

app_name = "api"

urlpatterns = [
    path("auth/login", views.SignInView.as_view(), name="login"),
    path("auth/mfa/totp/setup", views.TotpSetupView.as_view(), name="totp-setup"),
    path("auth/mfa/email/send", views.EmailSendView.as_view(), name="email-send"),
    path("auth/mfa/verify", views.VerifyView.as_view(), name="verify"),
    path("auth/token/refresh", views.RefreshView.as_view(), name="token-refresh"),
    path("auth/logout", views.LogoutView.as_view(), name="logout"),
    path("auth/password/forgot", views.PasswordForgotView.as_view(), name="password-forgot"),
    path("auth/password/reset", views.PasswordResetView.as_view(), name="password-reset"),
    path("Me", views.MeView.as_view(), name="me"),
    path("Me/password", views.MePasswordView.as_view(), name="me-password"),
    path("Users", views.UserListView.as_view(), name="users"),
    path("Users/<uuid:user_id>", views.UserDetailView.as_view(), name="user"),
    path("Users/<uuid:user_id>/events", views.UserEventsView.as_view(), name="user-events"),
    path("Settings", views.SettingsView.as_view(), name="settings"),
]
