from django.urls import path

from mfa import views

app_name = "mfa"

urlpatterns = [
    path("mfa/setup/", views.SetupView.as_view(), name="setup"),
    path("mfa/choose/", views.ChooseView.as_view(), name="choose"),
    path("mfa/verify/", views.VerifyView.as_view(), name="verify"),
    path("mfa/cancel/", views.CancelView.as_view(), name="cancel"),
    path("mfa/recovery-codes/", views.RecoveryCodesView.as_view(), name="recovery_codes"),
]
