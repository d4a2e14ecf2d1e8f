"""The admin's pages for users and the audit trail: tenant admins run their tenant from them,
platform operators run every tenant. The site itself (sign-in only through Gatehouse,
``has_permission``, sign-out audited, operators) is ``accounts.admin_site.GatehouseAdminSite``.

Scoping
    Tenant admins (``is_tenant_admin``; the services set ``is_staff`` for them) get
    ``TENANT_ADMIN_PERMISSIONS`` and see only their own tenant: its settings, its users and its
    audit events; another tenant's object URL is a 404 (``tenants.admin.TenantScopedAdminMixin``).
    Operators do not exist for them, as in the Users API (``accounts.selectors.users_seen_by``):
    an operator is not listed or offered as a choice, its URLs are 404, and audit events naming
    an operator (as user or actor) are hidden whole (``audit_events_seen_by``). They cannot
    create tenants, make superusers or move a user to another tenant (the tenant is fixed at
    creation for everyone).

Secrets
    No admin page shows a TOTP secret, a code hash or a refresh token: the ``mfa`` models are
    not registered, the user page shows MFA *status* only, and the site never offers simplejwt's
    token admins (which would show whole refresh tokens to operators).

Everything that writes goes through ``accounts.services`` (the same functions as the API),
with ``actor`` and a ``RequestContext`` on channel ``admin``, so the audit trail names the admin.

Notices
    The emails (account locked, second factor set up, MFA reset) are the templates
    ``accounts/email/<kind>_subject.txt`` and ``<kind>_message.txt``. To change them without
    editing the project, put files with the same names under a directory listed before
    ``BASE_DIR / "templates"`` in ``TEMPLATES[0]["DIRS"]`` (``yourdir/accounts/email/…``).
"""
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from typing import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, BaseUserCreationForm, UsernameField
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, gettext_lazy as _, ngettext

from accounts import lockout
from accounts.admin_site import admin_ctx
from accounts.audit import RequestContext
from accounts.models import AuditEvent, MfaMethod, User
from accounts.selectors import audit_events_seen_by, normalize_username, user_get_by_username, users_seen_by
from accounts.services import (
    password_reset_send,
    user_create,
    user_delete,
    user_set_password,
    user_unlock,
    user_update,
    username_taken,
)
from flows.password import link_base
from mfa.models import TOTPDevice
from mfa.recovery_codes import recovery_codes_left
from mfa.setup import mfa_enrolled, mfa_enrolled_q, mfa_reset, passkey_count, with_totp_confirmed
from tenants.admin import TenantScopedAdminMixin, is_operator

def admin_time(moment) -> str:
    """A time in the admin: to the second, with its time zone (``TIME_ZONE``)."""
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M:%S %Z}"


# --- users: forms ---------------------------------------------------------------------------

def offer_allowed_methods(field, tenant, *, keep: str = "") -> None:
    """Offer ``none`` and the second factors ``tenant`` allows (and ``keep``, the current value)."""
    field.choices = [(v, label) for v, label in field.choices if v in ("", MfaMethod.NONE, keep) or tenant.allows(v)]


class UserAddForm(BaseUserCreationForm):
    """Django's user-creation form (password typed twice, Django's password validators), saved
    through ``accounts.services.user_create``. Usernames are unique per tenant (checked here
    first, so the error stands beside the field; the service's is the one error); a tenant
    admin's new users always join the admin's own tenant (``forced_tenant``, set per request)."""

    forced_tenant = None

    class Meta:
        model = User
        fields = ("username", "email", "tenant", "mfa_method", "is_tenant_admin", "is_superuser")
        field_classes = {"username": UsernameField}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["password1"].required = self.fields["password2"].required = False
        if self.forced_tenant is not None and "mfa_method" in self.fields:
            offer_allowed_methods(self.fields["mfa_method"], self.forced_tenant)
        self.fields["password1"].help_text = (
            "Leave both empty to let the user choose their own: then send them a password reset link "
            "(“Send password reset link” on their page). Until then they cannot sign in."
        )

    def validate_passwords(self, password1_field_name="password1", password2_field_name="password2"):
        """Both empty: no password (the user gets in through a reset link); else Django's checks."""
        if self.cleaned_data.get(password1_field_name) or self.cleaned_data.get(password2_field_name):
            super().validate_passwords(password1_field_name, password2_field_name)

    def clean_username(self):
        return normalize_username(self.cleaned_data["username"])

    def target_tenant(self):
        return self.forced_tenant or self.cleaned_data.get("tenant")

    def clean(self):
        data = super().clean()
        tenant, username = self.target_tenant(), data.get("username")
        if tenant is not None:
            self.instance.tenant = tenant  # the password rules are the tenant's (checked after clean)
        if tenant is not None and username and user_get_by_username(tenant=tenant, username=username):
            self.add_error(None, username_taken())
        method = data.get("mfa_method")
        if tenant is not None and method and method != MfaMethod.NONE and not tenant.allows(method):
            self.add_error("mfa_method", "This tenant does not allow that second factor.")
        return data

    def save(self, commit=True):
        """Creates the user (whatever ``commit`` says: the service is the one place users are made)."""
        data = self.cleaned_data
        self.instance = user_create(
            tenant=self.target_tenant(),
            username=data["username"],
            email=data["email"],
            password=data.get("password1") or None,
            mfa_method=data.get("mfa_method") or MfaMethod.NONE,
            is_admin=bool(data.get("is_tenant_admin")),
            is_superuser=bool(data.get("is_superuser")),
        )
        self.save_m2m = lambda: None
        return self.instance


class UserChangeForm(forms.ModelForm):
    """A user's plain fields; saved through ``accounts.services.user_update``."""

    class Meta:
        model = User
        fields = ("username", "email", "mfa_method", "is_active", "is_tenant_admin", "is_superuser")
        field_classes = {"username": UsernameField}

    def clean_username(self):
        return normalize_username(self.cleaned_data["username"])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and "mfa_method" in self.fields:
            offer_allowed_methods(self.fields["mfa_method"], self.instance.tenant, keep=self.instance.mfa_method)

    def clean(self):
        data = super().clean()
        username = data.get("username")
        holder = username and user_get_by_username(tenant=self.instance.tenant, username=username)
        if holder and holder.pk != self.instance.pk:
            self.add_error(None, username_taken())
        method = data.get("mfa_method")
        if method and method != self.instance.mfa_method and method != MfaMethod.NONE and not self.instance.tenant.allows(method):
            self.add_error("mfa_method", "This tenant does not allow that second factor.")
        return data


class PasswordSetForm(AdminPasswordChangeForm):
    """Django's admin password form, minus "disable password-based authentication" (every
    Gatehouse user signs in with a password first), saved through
    ``accounts.services.user_set_password`` as ``actor``: validated, the user's sessions and
    refresh tokens ended, audited with the acting admin, the user told."""

    def __init__(self, user, *args, actor: User, ctx: RequestContext, **kwargs):
        super().__init__(user, *args, **kwargs)
        self.actor, self.ctx = actor, ctx
        self.fields.pop("usable_password", None)
        self.fields["password1"].required = self.fields["password2"].required = True

    def save(self, commit=True):
        """Sets the password (whatever ``commit`` says: the service is the one place it is set)."""
        return user_set_password(user=self.user, password=self.cleaned_data["password1"], actor=self.actor, ctx=self.ctx)


# --- users: list filters --------------------------------------------------------------------

class EnrolledFilter(admin.SimpleListFilter):
    title = _("MFA enrolled")
    parameter_name = "enrolled"

    def lookups(self, request, model_admin):
        return (("yes", _("Yes")), ("no", _("No")))

    def queryset(self, request, queryset):
        enrolled = mfa_enrolled_q()
        if self.value() == "yes":
            return queryset.filter(enrolled)
        if self.value() == "no":
            return queryset.exclude(enrolled)
        return queryset


class LockedFilter(admin.SimpleListFilter):
    title = _("locked")
    parameter_name = "locked"

    def lookups(self, request, model_admin):
        return (("yes", _("Locked now")), ("no", _("Not locked")))

    def queryset(self, request, queryset):
        locked = lockout.locked_now()
        if self.value() == "yes":
            return queryset.filter(locked)
        if self.value() == "no":
            return queryset.exclude(locked)
        return queryset


# --- users: MFA actions ---------------------------------------------------------------------

@dataclass(frozen=True)
class UserAction:
    """An MFA action on users, offered on a user's page and as a bulk action; both ask first."""

    name: str
    label: str
    confirm: str
    service: Callable[..., User]
    explanation: str
    done: str
    logged: str  # the admin's log entry ("Recent actions", the user's history)

    needs_request: bool = False  # the service also takes the request (links in mails)

    def perform(self, request, users) -> tuple[list[User], list[User]]:
        """Answers the users done and those the service refused (``ValidationError``: skipped)."""
        ctx = admin_ctx(request)
        extra = {"request": request} if self.needs_request else {}
        done, skipped = [], []
        for user in users:
            try:
                done.append(self.service(user=user, actor=request.user, ctx=ctx, **extra))
            except ValidationError:
                skipped.append(user)
        return done, skipped


RESET_MFA = UserAction(
    name="reset_mfa",
    label=_("Reset MFA"),
    confirm=_("Yes, reset MFA"),
    service=mfa_reset,
    explanation=_(
        "Their authenticator app's secret, their recovery codes and any emailed codes not yet used "
        "are deleted, and they are signed out of apps using the API. Their MFA method stays: an "
        "authenticator-app user sets the app up again, with a new QR code, at their next sign-in. "
        "They are told by email."
    ),
    done=_("MFA reset for {names}: at their next sign-in they set up their second factor again."),
    logged="Reset MFA.",
)
UNLOCK = UserAction(
    name="unlock",
    label=_("Unlock"),
    confirm=_("Yes, unlock"),
    service=user_unlock,
    explanation=_(
        "Their failed-password and failed-code counts go back to zero and any lock is lifted, so "
        "they can sign in again now."
    ),
    done=_("Unlocked {names}: they can sign in again now."),
    logged="Unlocked.",
)


def _reset_link_send(*, user: User, actor: User, ctx: RequestContext, request) -> User:
    password_reset_send(user=user, link_base=link_base(request), actor=actor, ctx=ctx)
    return user


SEND_PASSWORD_RESET = UserAction(
    name="send_password_reset",
    label=_("Send password reset link"),
    confirm=_("Yes, send the link"),
    service=_reset_link_send,
    explanation=_(
        "Each user is emailed a link to set a new password themselves, valid for the tenant's "
        "reset link lifetime and usable once. Their current password keeps working until they use "
        "it. Nobody is signed in by the link: they sign in afterwards with the new password and "
        "their second factor. This is also how a new user without a password gets in. Inactive "
        "users and users without an email address are skipped."
    ),
    done=_("Password reset link on its way to {names}."),
    logged="Sent a password reset link.",
    needs_request=True,
)
USER_ACTIONS = {action.name: action for action in (RESET_MFA, UNLOCK, SEND_PASSWORD_RESET)}


def _names(users) -> str:
    names = [u.username for u in users]
    shown = ", ".join(names[:10]) + (gettext(" and %(count)d more") % {"count": len(names) - 10} if len(names) > 10 else "")
    return ngettext("%(count)d user (%(names)s)", "%(count)d users (%(names)s)", len(names)) % {"count": len(names), "names": shown}


# --- users: the admin -----------------------------------------------------------------------

@admin.register(User)
class UserAdmin(TenantScopedAdminMixin, DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserAddForm
    # The columns that matter, narrow enough for 1280 px beside the filters: who, how they
    # sign in, whether they can now, when they last did, and their audit events.
    list_display = ("username", "email", "second_factor", "status", "last_sign_in", "events_link")
    list_filter = ("mfa_method", EnrolledFilter, LockedFilter, "is_tenant_admin", "is_active")
    search_fields = ("username", "email")
    ordering = ("tenant_id", "username")
    filter_horizontal = ()
    actions = ("reset_mfa_selected", "unlock_selected", "send_password_reset_selected")
    mfa_status_fields = (
        "mfa_enrolled",
        "authenticator_app",
        "passkeys",
        "recovery_codes_left",
        "locked_until",
        "failed_password_count",
        "failed_code_count",
    )
    readonly_fields = ("id", "tenant", "email_verified_at", "password_link", *mfa_status_fields, "is_staff", "last_login", "created_at")

    # The queryset, scoped to the tenant by the mixin and to the users the admin may see by
    # ``users_seen_by``, is what every user page reads: the list and its search, filters and
    # bulk actions, the object pages (404 otherwise), the autocomplete and raw-id pop-ups.
    def get_queryset(self, request):
        queryset = with_totp_confirmed(super().get_queryset(request).select_related("tenant"))
        return users_seen_by(viewer=request.user, users=queryset)

    # Pages
    def get_fieldsets(self, request, obj=None):
        operator = is_operator(request)
        if obj is None:
            account = ("username", "email", *(("tenant",) if operator else ()), "mfa_method", "is_tenant_admin")
            return (
                (None, {"fields": account}),
                ("Password", {"fields": ("password1", "password2")}),
                *((("Platform", {"fields": ("is_superuser",)}),) if operator else ()),
            )
        roles = ("is_active", "is_tenant_admin", *(("is_superuser",) if operator else ()), "is_staff")
        return (
            (None, {"fields": ("username", "email", "email_verified_at", "tenant", "id", "password_link")}),
            ("Second factor", {"fields": ("mfa_method", *self.mfa_status_fields)}),
            ("Roles", {"fields": roles}),
            ("Dates", {"fields": ("created_at", "last_login")}),
        )

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ()

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is None and not is_operator(request):
            form = type(form.__name__, (form,), {"forced_tenant": request.user.tenant})
        return form

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                f"<path:object_id>/{action.name.replace('_', '-')}/",
                self.admin_site.admin_view(self.user_action_view),
                {"action_name": action.name},
                name="%s_%s_%s" % (*info, action.name),
            )
            for action in USER_ACTIONS.values()
        ] + super().get_urls()

    # The list's columns
    @admin.display(description=_("second factor"), ordering="mfa_method")
    def second_factor(self, obj):
        if obj.mfa_method == MfaMethod.NONE:
            return _("None")
        state = _("ready") if mfa_enrolled(obj) else _("not set up yet")
        return f"{obj.get_mfa_method_display()} ({state})"

    @admin.display(description=_("status"))
    def status(self, obj):
        if not obj.is_active:
            return _("Inactive")
        if lockout.is_locked(obj):
            return _("Locked until %(time)s") % {"time": admin_time(obj.locked_until)}
        return _("Admin") if obj.is_tenant_admin else _("Active")

    @admin.display(description=_("last sign-in"), ordering="last_login")
    def last_sign_in(self, obj):
        return admin_time(obj.last_login) if obj.last_login else "—"

    @admin.display(description=_("audit events"))
    def events_link(self, obj):
        url = reverse("admin:accounts_auditevent_changelist")
        return format_html('<a href="{}?user__id__exact={}">{}</a>', url, obj.pk, _("Events"))

    # Read-only MFA status (never a secret, never a hash)
    @admin.display(boolean=True, description=_("MFA enrolled"))
    def mfa_enrolled(self, obj):
        return mfa_enrolled(obj)

    @admin.display(description=_("passkeys"))
    def passkeys(self, obj):
        return passkey_count(obj)

    @admin.display(description=_("authenticator app"))
    def authenticator_app(self, obj):
        device = TOTPDevice.objects.filter(user=obj).values("confirmed_at", "created_at").first()
        if device is None:
            return "Not set up"
        if device["confirmed_at"] is None:
            return _("Set-up started %(time)s, not finished") % {"time": admin_time(device["created_at"])}
        return _("Set up %(time)s") % {"time": admin_time(device["confirmed_at"])}

    @admin.display(description=_("recovery codes left"))
    def recovery_codes_left(self, obj):
        return recovery_codes_left(user=obj)

    @admin.display(boolean=True, description=_("locked now"))
    def locked(self, obj):
        return lockout.is_locked(obj)

    @admin.display(description=_("password"))
    def password_link(self, obj):
        url = reverse("admin:auth_user_password_change", args=[obj.pk])
        return format_html('<a href="{}">Set a new password</a> (also signs them out of apps using the API)', url)

    # Writes: all through accounts.services
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as exc:
            # The form checked the username, but a parallel request took it before the save
            # (the database constraint refused it; nothing was written).
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj, form, change):
        if not change:
            return  # UserAddForm.save() created the user through user_create
        names = {"is_tenant_admin": "is_admin"}
        fields = {"username", "email", "mfa_method", "is_active", "is_tenant_admin"}
        changes = {names.get(f, f): form.cleaned_data[f] for f in form.changed_data if f in fields}
        # is_admin is always passed, so is_staff follows is_tenant_admin and (for operators) is_superuser.
        changes.setdefault("is_admin", obj.is_tenant_admin)
        user_update(user=obj, actor=request.user, ctx=admin_ctx(request), **changes)

    def delete_model(self, request, obj):
        user_delete(user=obj)

    def delete_queryset(self, request, queryset):
        for user in queryset:
            user_delete(user=user)

    def user_change_password(self, request, id, form_url=""):
        """Django's own password page and view, with ``PasswordSetForm``. The view builds its
        form from ``change_password_form`` without the request, so the page is served by an
        admin of its own whose form is bound to the acting admin (nothing shared between
        requests is changed). Django's view keeps the admin's own session when they change
        their own password (``update_session_auth_hash``)."""
        page = type(self)(self.model, self.admin_site)
        page.change_password_form = partial(PasswordSetForm, actor=request.user, ctx=admin_ctx(request))
        response = super(UserAdmin, page).user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == HTTPStatus.FOUND:  # saved
            user = self.get_object(request, unquote(id))
            self.message_user(request, _("Password changed for %(username)s. Their API sessions were signed out.") % {"username": user.username})
        return response

    # MFA actions: one user (a button on their page) or many (the list's actions); both ask first.
    def user_action_view(self, request, object_id, action_name):
        action = USER_ACTIONS[action_name]
        user = self.get_object(request, unquote(object_id))
        if not self.has_change_permission(request, user):
            raise PermissionDenied
        change_url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[user.pk])
        if request.method == "POST":
            self._report(request, action, *action.perform(request, [user]))
            return HttpResponseRedirect(change_url)
        return self._confirmation(request, action, [user], cancel_url=change_url)

    def _bulk(self, request, queryset, action: UserAction):
        users = list(queryset)
        if request.POST.get("post") == "yes":
            self._report(request, action, *action.perform(request, users))
            return None
        changelist = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
        return self._confirmation(request, action, users, cancel_url=changelist, bulk=True)

    def _report(self, request, action: UserAction, done: list[User], skipped: list[User]) -> None:
        for user in done:
            self.log_change(request, user, action.logged)  # "Recent actions" and the user's history
        if done:
            names = done[0].username if len(done) == 1 else _names(done)
            self.message_user(request, action.done.format(names=names), messages.SUCCESS)
        if skipped:
            self.message_user(request, _("Skipped %(names)s: inactive, or without an email address.") % {"names": _names(skipped)},
                              messages.WARNING)

    def _confirmation(self, request, action, users, *, cancel_url, bulk=False):
        context = {
            **self.admin_site.each_context(request),
            "title": _("%(action)s: are you sure?") % {"action": action.label},
            "action": action,
            "bulk_action": f"{action.name}_selected" if bulk else "",
            "users": users,
            "now": timezone.now(),
            "cancel_url": cancel_url,
            "opts": self.opts,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/accounts/user/action_confirmation.html", context)

    @admin.action(description=_("Reset MFA of the selected users…"), permissions=["change"])
    def reset_mfa_selected(self, request, queryset):
        return self._bulk(request, queryset, RESET_MFA)

    @admin.action(description=_("Unlock the selected users…"), permissions=["change"])
    def unlock_selected(self, request, queryset):
        return self._bulk(request, queryset, UNLOCK)

    @admin.action(description="Send the selected users a password reset link…", permissions=["change"])
    def send_password_reset_selected(self, request, queryset):
        return self._bulk(request, queryset, SEND_PASSWORD_RESET)


# --- the audit trail: read-only for everyone ------------------------------------------------

class ChannelFilter(admin.SimpleListFilter):
    title = _("channel")
    parameter_name = "channel"
    CHANNELS = (("web", _("Sign-in pages")), ("api", _("API")), ("admin", _("Admin site")), ("cli", _("Command line")))

    def lookups(self, request, model_admin):
        return self.CHANNELS

    def queryset(self, request, queryset):
        return queryset.filter(channel=self.value()) if self.value() else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    """Append-only: nobody adds, changes or deletes an event here, operators included."""

    list_display = ("when", "kind", "username", "actor", "channel", "ip")
    list_filter = ("kind", "created_at", ChannelFilter)
    list_select_related = ("actor", "tenant")
    search_fields = ("username", "ip")
    date_hierarchy = "created_at"
    fields = ("created_at", "kind", "tenant", "user", "username", "actor", "channel", "ip", "user_agent")
    readonly_fields = fields
    actions = None

    def get_queryset(self, request):
        """Scoped to the tenant by the mixin; an event naming an operator is hidden from a tenant
        admin (``audit_events_seen_by``), in the list and as a 404 on its page."""
        return audit_events_seen_by(viewer=request.user, events=super().get_queryset(request))

    @admin.display(description=_("when"), ordering="created_at")
    def when(self, obj):
        return admin_time(obj.created_at)

    def lookup_allowed(self, lookup, value, request=None):
        # One user's events, linked from the users list (the queryset stays scoped).
        return lookup == "user__id__exact" or super().lookup_allowed(lookup, value, request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
