"""django-oauth-toolkit's swappable models, made per tenant.

``Application`` (an OpenID Connect client) belongs to a tenant: every look-up of a client
goes through its tenant (``oidc.validators.TenantOAuth2Validator``), so a client of one
tenant is unknown to every other. ``Grant`` (an authorization code) also carries how the
person signed in (``amr``, ``acr``, ``auth_time``) from the authorize request to the ID
token, and whether the code was used, so a replayed code ends the tokens it minted
(RFC 6749 §4.1.2). The code itself is stored only as a keyed hash (``oidc.fields``): DOT
stores it in clear, and looks it up with ``filter(code=...)``, which the field hashes too.

These are DOT's public extension points (``OAUTH2_PROVIDER_APPLICATION_MODEL``,
``OAUTH2_PROVIDER_GRANT_MODEL``); this app's first migration runs before DOT's.
"""
from functools import cached_property
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from oauth2_provider.models import AbstractApplication, AbstractGrant

from oidc.fields import KeyedHashField
from tenants.models import Tenant
from tenants.signing import jwk_private, private_pem_of, signing_key_current


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


class Application(AbstractApplication):
    """An application that signs its users in with a tenant's OpenID Provider."""

    tenant = models.ForeignKey(
        Tenant,
        on_delete=models.CASCADE,
        related_name="oidc_clients",
        help_text=_("The tenant whose users sign in to this client; no other tenant knows it."),
    )

    class Meta(AbstractApplication.Meta):
        verbose_name = _("OpenID Connect client")
        verbose_name_plural = _("OpenID Connect clients")
        ordering = ["tenant_id", "created"]
        indexes = [models.Index(fields=["tenant", "created"], name="oidc_app_tenant_created")]

    @cached_property
    def jwk_key(self):
        """The tenant's current signing key, which signed the ID token this client is being
        given: DOT reads this property to check that ID token before it links the new access
        token to it. (Signing is ``tenants.signing``'s, through
        ``TenantOAuth2Validator.finalize_id_token``.) Read once per loaded client."""
        return jwk_private(private_pem_of(signing_key_current(tenant_id=self.tenant_id)))

    def clean(self) -> None:
        """DOT's checks, less the one that wants a project-wide ``OIDC_RSA_PRIVATE_KEY``
        (keys are the tenant's, ``tenants.signing``), plus: plain ``http`` only for a
        loopback host (RFC 8252 §7.3; RFC 9700 §2.1)."""
        errors = {}
        try:
            super().clean()
        except ValidationError as error:
            errors = {field: messages for field, messages in error.message_dict.items() if field != "algorithm"}
        for field in ("redirect_uris", "post_logout_redirect_uris", "allowed_origins"):
            for uri in getattr(self, field).split():
                parts = urlsplit(uri)
                if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
                    errors.setdefault(field, []).append(
                        _("Plain http is only for localhost and 127.0.0.1; use https: %(uri)s") % {"uri": uri[:200]}
                    )
        if errors:
            raise ValidationError(errors)


class Grant(AbstractGrant):
    """An authorization code, with the facts of the sign-in that approved it."""

    code = KeyedHashField(
        purpose="oidc-code", unique=True,
        help_text=_("A keyed hash of the authorization code; the code itself is never stored."),
    )
    amr = models.JSONField(
        default=list, blank=True, help_text=_("How the person signed in (RFC 8176), for the ID token's amr.")
    )
    acr = models.CharField(max_length=64, blank=True, default="", help_text=_("The ID token's acr for this sign-in."))
    auth_time = models.DateTimeField(null=True, blank=True, help_text=_("When the person signed in, for the ID token's auth_time."))
    used_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the code was exchanged for tokens; a second exchange ends them.")
    )
    token_family = models.UUIDField(
        null=True, blank=True, help_text=_("The refresh-token family the exchange began (revoked if the code is replayed).")
    )

    class Meta(AbstractGrant.Meta):
        verbose_name = _("authorization code")
