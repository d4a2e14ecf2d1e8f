"""The audit trail: one explicit call per event, made by the services (never by signals)."""
from dataclasses import dataclass

from accounts.models import AuditEvent


@dataclass(frozen=True)
class RequestContext:
    """Who is asking, from where: what services need to know about a request to audit it."""

    ip: str | None = None
    user_agent: str = ""
    channel: str = ""
    # SCHEME://HOST the request came in on: tokens name their issuer with it.
    origin: str = ""

    @classmethod
    def from_request(cls, request, *, channel: str) -> "RequestContext":
        return cls(
            ip=request.META.get("REMOTE_ADDR") or None,
            # NUL cannot be stored in a PostgreSQL text column; a client may send one.
            user_agent=request.META.get("HTTP_USER_AGENT", "").replace("\x00", "")[:300],
            channel=channel,
            origin=f"{request.scheme}://{request.get_host()}",
        )


CLI = RequestContext(channel="cli")


def audit_event(*, kind: str, tenant_id: str, user=None, username: str = "", actor=None, ctx: RequestContext | None = None) -> AuditEvent:
    """The event, not yet written (``audit_record`` writes it; a sign-in writes it with its other rows)."""
    ctx = ctx or RequestContext()
    return AuditEvent(
        tenant_id=tenant_id,
        user=user,
        username=(user.username if user is not None else username)[:150],
        actor=actor,
        kind=kind,
        ip=ctx.ip,
        user_agent=ctx.user_agent,
        channel=ctx.channel,
    )


def audit_record(**event) -> AuditEvent:
    """Write one event (``audit_event``'s arguments)."""
    row = audit_event(**event)
    row.save(force_insert=True)
    return row
