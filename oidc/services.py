"""Writes of a tenant's OpenID Connect clients.

A confidential client's secret is made here and returned once, by ``client_create``;
DOT's ``ClientSecretField`` stores only its hash (``hash_client_secret``)."""
from django.db import transaction
from oauth2_provider.generators import generate_client_secret

from oidc.models import Application
from tenants.models import Tenant

CLIENT_FIELDS = ("name", "redirect_uris", "post_logout_redirect_uris", "allowed_origins", "skip_authorization")


def _uris(value) -> str:
    return " ".join(value) if isinstance(value, (list, tuple)) else (value or "")


def client_create(
    *,
    tenant: Tenant,
    name: str,
    client_type: str,
    redirect_uris: list[str],
    post_logout_redirect_uris: list[str] = (),
    allowed_origins: list[str] = (),
    skip_authorization: bool = False,
) -> tuple[Application, str | None]:
    """A new client of ``tenant`` and, for a confidential client, its secret (shown once)."""
    secret = generate_client_secret() if client_type == Application.CLIENT_CONFIDENTIAL else None
    client = Application(
        tenant=tenant,
        name=name,
        client_type=client_type,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=_uris(redirect_uris),
        post_logout_redirect_uris=_uris(post_logout_redirect_uris),
        allowed_origins=_uris(allowed_origins),
        skip_authorization=skip_authorization,
        algorithm=Application.RS256_ALGORITHM,
        client_secret=secret or "",
        hash_client_secret=True,
    )
    client.full_clean()
    with transaction.atomic():
        client.save(force_insert=True)
    return client, secret


def client_update(*, client: Application, **changes) -> Application:
    """Change a client's settings (not its id, type or secret: make a new client for
    those); validated before anything is saved."""
    unknown = set(changes) - set(CLIENT_FIELDS)
    if unknown:
        raise ValueError(f"Unknown client fields: {sorted(unknown)}")
    for field, value in changes.items():
        setattr(client, field, _uris(value) if field.endswith("uris") or field == "allowed_origins" else value)
    client.full_clean()
    client.save()
    return client


def client_delete(*, client: Application) -> None:
    """The client and every code and token it holds (DOT's foreign keys cascade)."""
    client.delete()
