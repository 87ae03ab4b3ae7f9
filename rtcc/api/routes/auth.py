"""Sign in and out, MFA enrolment, and the admin's MFA-for-everyone switch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from rtcc.api.deps import SESSION_COOKIE, Admin, AnyStaff, CtxDep, PendingOk, Principal, Public
from rtcc.errors import AuthError, LockedOut, NotFound
from rtcc.roles import Role
from rtcc.store.tables import User, UserSession

router = APIRouter(prefix="/auth", tags=["auth"])


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    totp_code: str | None = Field(None, max_length=16, description="6-digit code when MFA is on.")


class UserOut(BaseModel):
    username: str
    role: str
    display_name: str = ""
    mfa_enabled: bool = False


class LoginOut(BaseModel):
    token: str = Field(description="Session token: send as 'Authorization: Bearer <token>'.")
    user: UserOut
    mfa_enrolment_required: bool
    idle_timeout_s: float


class MfaCodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=6, max_length=16)


class PasswordChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class MfaRequiredIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    required: bool


def _user_out(u: User) -> UserOut:
    return UserOut(username=u.username, role=u.role, display_name=u.display_name, mfa_enabled=u.mfa_enabled)


def _client(request: Request) -> str:
    host = request.client.host if request.client else "?"
    return f"{host} {request.headers.get('user-agent', '')}"[:256]


@router.post("/login", summary="Sign in; returns a session token and sets the session cookie")
async def login(body: LoginIn, request: Request, response: Response, ctx: CtxDep, _: Public) -> LoginOut:
    from rtcc.oversight.accounts import authenticate
    from rtcc.oversight.sessions import create_session

    sec = ctx.settings.security
    now = datetime.now(UTC)
    client = _client(request)

    def _do(s: Any) -> tuple[Any, str | None, UserOut | None]:
        outcome = authenticate(
            s,
            body.username,
            body.password,
            body.totp_code,
            now=now,
            lockout_attempts=sec.lockout_attempts,
            lockout_minutes=sec.lockout_minutes,
            mfa_required_default=sec.mfa_required,
        )
        if not outcome.ok or outcome.user is None:
            return outcome, None, None
        token = create_session(
            s,
            outcome.user,
            mfa_pending=outcome.mfa_enrolment_required,
            mfa_verified=outcome.mfa_verified,
            client=client,
            now=now,
            max_age=timedelta(hours=sec.session_max_hours),
        )
        return outcome, token, _user_out(outcome.user)

    outcome, token, user = await ctx.store.write(_do)
    if token is None or user is None:
        # The precise reason (unknown_user, bad_password, ...) is kept here; the client gets
        # outcome.error(), which does not tell an unknown name from a wrong password.
        await ctx.audit(
            Principal(username=body.username, role=Role.public),
            "login",
            "session",
            outcome="locked" if outcome.locked_until else "denied",
            details={"reason": outcome.reason.value, "client": client},
        )
        error = outcome.error()
        raise error if error is not None else AuthError("sign-in failed")
    await ctx.audit(
        Principal(username=user.username, role=Role(user.role)),
        "login",
        "session",
        outcome="ok",
        details={"client": client, "mfa_enrolment_required": outcome.mfa_enrolment_required},
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=ctx.settings.security.cookie_secure,
        path="/",
    )
    return LoginOut(
        token=token,
        user=user,
        mfa_enrolment_required=outcome.mfa_enrolment_required,
        idle_timeout_s=sec.session_idle_minutes * 60,
    )


@router.post("/logout", summary="End this session", status_code=204)
async def logout(ctx: CtxDep, who: PendingOk, response: Response) -> Response:
    from rtcc.oversight.sessions import revoke_session_hash

    th = who.token_hash
    if th is not None:
        await ctx.store.write(lambda s: revoke_session_hash(s, th))
        ctx.hub.end_sessions(token_hash=th)
    await ctx.audit(who, "logout", "session")
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.status_code = 204
    return response


@router.post(
    "/password",
    status_code=204,
    summary="Change your own password (your other sessions end)",
    responses={
        422: {"description": "The current password is wrong, or the new one breaks the policy."},
        423: {"description": "Wrong current passwords locked the account (like failed logins)."},
    },
)
async def change_password(body: PasswordChangeIn, ctx: CtxDep, who: AnyStaff, response: Response) -> Response:
    from rtcc.oversight.accounts import change_own_password

    sec = ctx.settings.security
    uid = who.user_id
    assert uid is not None  # a signed-in person

    def _do(s: Any) -> Any:
        return change_own_password(
            s,
            uid,
            body.current_password,
            body.new_password,
            keep_session_hash=who.token_hash,
            now=datetime.now(UTC),
            lockout_attempts=sec.lockout_attempts,
            lockout_minutes=sec.lockout_minutes,
        )

    refused = await ctx.store.write(_do)
    if isinstance(refused, LockedOut):  # its sessions ended
        ctx.hub.end_sessions(username=who.username)
    elif refused is None:
        ctx.hub.end_sessions(username=who.username, keep_token_hash=who.token_hash)
    if refused is not None:
        outcome = "locked" if isinstance(refused, LockedOut) else "denied"
        await ctx.audit(who, "change_password", "user", record_id=who.username, outcome=outcome)
        raise refused
    await ctx.audit(who, "change_password", "user", record_id=who.username)
    response.status_code = 204
    return response


@router.get("/me", summary="Who is signed in")
async def me(ctx: CtxDep, who: PendingOk) -> dict[str, Any]:
    uid = who.user_id

    def _get(s: Any) -> User:
        u = s.get(User, uid)
        if u is None:
            raise NotFound("user not found")
        return u  # type: ignore[no-any-return]

    u = await ctx.store.read(_get)
    return {**_user_out(u).model_dump(), "mfa_pending": who.mfa_pending}


@router.post("/mfa/enrol", summary="Begin TOTP enrolment: returns the secret and otpauth URI")
async def mfa_enrol(ctx: CtxDep, who: PendingOk) -> dict[str, str]:
    from rtcc.oversight.mfa import begin_enrolment

    uid = who.user_id

    def _do(s: Any) -> Any:
        return begin_enrolment(s, s.get(User, uid))

    enrol = await ctx.store.write(_do)
    await ctx.audit(who, "mfa_enrol_begin", "user", record_id=who.username)
    return {"secret": enrol.secret, "otpauth_uri": enrol.uri}


@router.post("/mfa/confirm", summary="Finish TOTP enrolment with a current code")
async def mfa_confirm(body: MfaCodeIn, ctx: CtxDep, who: PendingOk) -> dict[str, bool]:
    from rtcc.oversight.mfa import confirm_enrolment
    from rtcc.oversight.sessions import complete_mfa

    uid, th = who.user_id, who.token_hash

    def _do(s: Any) -> None:
        confirm_enrolment(s, s.get(User, uid), body.code)
        row = s.get(UserSession, th)
        if row is not None:
            complete_mfa(row)

    await ctx.store.write(_do)
    await ctx.audit(who, "mfa_enrol_confirm", "user", record_id=who.username)
    return {"mfa_enabled": True}


@router.put(
    "/mfa/required",
    summary="Require MFA for everyone (admin switch); sessions opened without MFA then end",
)
async def set_mfa_required(body: MfaRequiredIn, ctx: CtxDep, who: Admin) -> dict[str, bool]:
    from rtcc.oversight.accounts import set_system_setting

    await ctx.store.write(lambda s: set_system_setting(s, "mfa_required", body.required))
    await ctx.audit(who, "set_mfa_required", "system", details={"required": body.required})
    return {"required": body.required}


@router.get("/mfa/required", summary="Whether MFA is required for everyone")
async def get_mfa_required(ctx: CtxDep, _: Admin) -> dict[str, bool]:
    from rtcc.oversight.accounts import mfa_required

    default = ctx.settings.security.mfa_required
    return {"required": await ctx.store.read(lambda s: mfa_required(s, default))}
