"""Accounts: admins create people, set roles, disable and unlock accounts, and reset MFA.

The last enabled admin cannot be disabled or demoted (409): nobody could then
manage accounts from the API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from rtcc.api.deps import Admin, CtxDep
from rtcc.errors import NotFound, ValidationFailed
from rtcc.roles import Role
from rtcc.store.tables import User

router = APIRouter(prefix="/users", tags=["accounts"])

UserPath = Path(min_length=1, max_length=64)


class UserOut(BaseModel):
    username: str
    role: str
    display_name: str
    mfa_enabled: bool
    disabled: bool
    locked: bool


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    role: Role
    display_name: str = Field("", max_length=128)


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    disabled: bool | None = None
    display_name: str | None = Field(None, max_length=128)
    locked: bool | None = Field(
        None,
        description="false: lift a lockout after failed logins and reset the counter. "
        "Only failed logins lock an account (to keep someone out, disable it).",
    )


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(
        min_length=1,
        max_length=1024,
        description="The new password (the policy applies). Give it to the person by a safe way; "
        "they should change it (POST /auth/password).",
    )


def _out(u: User) -> UserOut:
    return UserOut(
        username=u.username,
        role=u.role,
        display_name=u.display_name,
        mfa_enabled=u.mfa_enabled,
        disabled=u.disabled,
        # An expired lock stays stored until the next login; it no longer locks anyone.
        locked=u.locked_until is not None and u.locked_until > datetime.now(UTC),
    )


def _get(s: Any, username: str) -> User:
    from rtcc.oversight.accounts import get_user

    u = get_user(s, username)
    if u is None:
        raise NotFound(f"no user {username!r}")
    return u


@router.get("", summary="Every account")
async def list_users(ctx: CtxDep, who: Admin) -> dict[str, list[UserOut]]:
    from rtcc.oversight.accounts import list_users as repo_list

    rows = await ctx.store.read(repo_list)
    return {"items": [_out(u) for u in rows]}


@router.post("", status_code=201, summary="Create an account")
async def create(body: UserIn, ctx: CtxDep, who: Admin) -> UserOut:
    from rtcc.oversight.accounts import create_user

    if body.role is Role.public:
        raise ValidationFailed("'public' is not a role an account can hold")
    u = await ctx.store.write(
        lambda s: create_user(s, body.username, body.password, body.role, body.display_name)
    )
    await ctx.audit(who, "create_user", "user", record_id=body.username, details={"role": body.role})
    return _out(u)


@router.patch(
    "/{username}",
    summary='Change role or display name, disable or enable, unlock ({"locked": false})',
    responses={409: {"description": "Would disable or demote the last enabled admin."}},
)
async def patch(body: UserPatch, ctx: CtxDep, who: Admin, username: str = UserPath) -> UserOut:
    from rtcc.oversight.accounts import disable, set_display_name, set_role, unlock
    from rtcc.oversight.sessions import revoke_all_for_user

    if body.role is Role.public:
        raise ValidationFailed("'public' is not a role an account can hold")
    if body.locked:
        raise ValidationFailed(
            "only failed logins lock an account; to keep someone out, set disabled to true"
        )

    def _do(s: Any) -> User:
        u = _get(s, username)
        # Disable before demoting: each refuses when it would leave no enabled admin.
        if body.disabled is not None:
            disable(s, u, disabled=body.disabled)
        if body.role is not None:
            set_role(s, u, body.role)
        if body.display_name is not None:
            set_display_name(s, u, body.display_name)  # trimmed; blank: the username, as at creation
        if body.locked is False:
            unlock(s, u)
        if body.disabled or body.role is not None:
            revoke_all_for_user(s, u.id)
        s.flush()
        return u

    u = await ctx.store.write(_do)
    if body.disabled or body.role is not None:
        ctx.hub.end_sessions(username=u.username)  # its live sockets close now (sessions ended above)
    await ctx.audit(
        who, "update_user", "user", record_id=username, details=body.model_dump(exclude_none=True)
    )
    return _out(u)


@router.post(
    "/{username}/password",
    summary="Set a new password for someone who forgot theirs (ends their sessions, lifts a lockout)",
)
async def set_password(body: PasswordIn, ctx: CtxDep, who: Admin, username: str = UserPath) -> UserOut:
    from rtcc.oversight.accounts import set_password as repo_set

    def _do(s: Any) -> User:
        return repo_set(s, _get(s, username), body.password)

    u = await ctx.store.write(_do)
    ctx.hub.end_sessions(username=u.username)
    await ctx.audit(who, "set_password", "user", record_id=username)
    return _out(u)


@router.post("/{username}/reset-mfa", summary="Turn a person's MFA off (lost phone)")
async def reset_mfa(ctx: CtxDep, who: Admin, username: str = UserPath) -> UserOut:
    from rtcc.oversight.mfa import disable_mfa

    def _do(s: Any) -> User:
        u = _get(s, username)
        disable_mfa(s, u)
        return u

    u = await ctx.store.write(_do)
    await ctx.audit(who, "reset_mfa", "user", record_id=username)
    return _out(u)
