"""The API's shared context and its typed dependencies.

Every route declares the roles it allows with exactly one :class:`Allow`
dependency (``Allow(Role.public)`` marks a public route); a test walks every
route × every role against that declaration.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request, WebSocket

from rtcc.errors import AuthError, Forbidden
from rtcc.roles import OPERATIONS, STAFF, Role

if TYPE_CHECKING:
    from rtcc.bus import Bus
    from rtcc.ingest.service import IngestService
    from rtcc.metrics import Metrics
    from rtcc.settings import Settings
    from rtcc.store.db import Store

    from .hub import LiveHub

SESSION_COOKIE = "rtcc_session"


@dataclass
class Principal:
    """Who is calling: a signed-in person, or the anonymous public."""

    username: str
    role: Role
    user_id: int | None = None
    token_hash: str | None = None
    mfa_pending: bool = False

    @property
    def is_public(self) -> bool:
        return self.user_id is None


ANONYMOUS = Principal(username="anonymous", role=Role.public)


@dataclass
class Context:
    """What routes need: settings, store, bus, counters, ingest, live hub."""

    settings: Settings
    store: Store
    bus: Bus
    metrics: Metrics
    ingest: IngestService
    hub: LiveHub
    audit: Callable[..., Awaitable[None]]
    map_layers: dict[str, Any] = field(default_factory=dict)
    services: dict[str, Any] = field(default_factory=dict)
    """Services the processors offer to routes, by name (see ``Center.services``)."""
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ready: bool = False


def get_ctx(request: Request) -> Context:
    ctx = request.app.state.ctx
    assert isinstance(ctx, Context)
    return ctx


CtxDep = Annotated[Context, Depends(get_ctx)]


def token_from(headers: Any, cookies: Any, query: Any | None = None) -> str | None:
    """A session token from ``Authorization: Bearer``, the session cookie, or ``?token=``."""
    auth = headers.get("authorization")
    if auth and auth.lower().startswith("bearer "):
        return str(auth[7:].strip()) or None
    tok = cookies.get(SESSION_COOKIE)
    if tok:
        return str(tok)
    if query is not None and query.get("token"):
        return str(query.get("token"))
    return None


async def resolve_principal(ctx: Context, token: str | None) -> Principal | None:
    """The signed-in person behind ``token``, or None (expired, revoked, unknown)."""
    if not token:
        return None
    from rtcc.oversight.sessions import resolve_session

    idle = ctx.settings.security.session_idle_minutes
    now = datetime.now(UTC)
    mfa = ctx.settings.security.mfa_required  # the default when the admin switch was never set
    found = await ctx.store.write(
        lambda s: resolve_session(s, token, now=now, idle_minutes=idle, mfa_default=mfa)
    )
    if found is None:
        return None
    sess, user = found
    return Principal(
        username=user.username,
        role=Role(user.role),
        user_id=user.id,
        token_hash=sess.token_hash,
        mfa_pending=sess.mfa_pending,
    )


class Allow:
    """Dependency declaring (and enforcing) the roles a route allows.

    Parameters
    ----------
    *roles
        Roles allowed; ``Role.public`` makes the route open to anyone (the
        principal is then :data:`ANONYMOUS` unless a valid session is sent).
    mfa_pending_ok
        Whether a session still waiting for MFA enrolment may call the route.
    """

    def __init__(self, *roles: Role, mfa_pending_ok: bool = False) -> None:
        if not roles:
            raise ValueError("Allow needs at least one role")
        self.roles = frozenset(roles)
        self.mfa_pending_ok = mfa_pending_ok

    @property
    def public(self) -> bool:
        return Role.public in self.roles

    async def __call__(self, request: Request) -> Principal:
        ctx = get_ctx(request)
        token = token_from(request.headers, request.cookies)
        principal = await resolve_principal(ctx, token)
        if self.public:
            return principal or ANONYMOUS
        if principal is None:
            raise AuthError(
                "sign in first: send the session token as 'Authorization: Bearer <token>' "
                "or the rtcc_session cookie (sessions end after idle time)"
            )
        if principal.mfa_pending and not self.mfa_pending_ok:
            raise Forbidden(
                "multi-factor authentication is required: enrol a TOTP app via /api/v1/auth/mfa/enrol first",
                details={"reason": "mfa_enrolment_required"},
            )
        if principal.role not in self.roles:
            ctx.metrics.inc("access_denied", role=principal.role.value)
            raise Forbidden(
                f"role {principal.role.value!r} may not do this; allowed: "
                + ", ".join(sorted(r.value for r in self.roles))
            )
        request.state.principal = principal
        return principal

    def __repr__(self) -> str:
        return f"Allow({', '.join(sorted(r.value for r in self.roles))})"


async def ws_principal(websocket: WebSocket) -> Principal | None:
    """Resolve a WebSocket's principal from its cookie, bearer header or ``?token=``."""
    ctx = websocket.app.state.ctx
    token = token_from(websocket.headers, websocket.cookies, websocket.query_params)
    return await resolve_principal(ctx, token)


Public = Annotated[Principal, Depends(Allow(Role.public))]
AnyStaff = Annotated[Principal, Depends(Allow(*STAFF))]
Operations = Annotated[Principal, Depends(Allow(*OPERATIONS))]
Admin = Annotated[Principal, Depends(Allow(Role.admin))]
Supervisors = Annotated[Principal, Depends(Allow(Role.admin, Role.supervisor))]
Oversight = Annotated[Principal, Depends(Allow(Role.admin, Role.auditor))]
PendingOk = Annotated[Principal, Depends(Allow(*STAFF, mfa_pending_ok=True))]
