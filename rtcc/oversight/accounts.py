"""People's accounts: creation, roles, passwords, lockout and login.

Usernames are case-insensitive: they are stored lower-case and looked up
lower-case. Functions that act on an existing account accept a
:class:`~rtcc.store.tables.User`, its id or its username (:data:`UserRef`).

Login and transactions
----------------------
:func:`authenticate` never raises for a failed login. A failed attempt must
*stay* counted, but the API runs the call inside :meth:`Store.run` /
:meth:`Store.write`, where an exception rolls the transaction back (and the
counter with it). So it returns an :class:`AuthOutcome`; the caller lets the
transaction commit and then raises :meth:`AuthOutcome.error` outside it::

    outcome = await store.write(lambda s: authenticate(s, name, pw, code, now=utcnow()))
    user = outcome.raise_for_failure()   # AuthError / LockedOut, after the commit

On PostgreSQL the user's row is locked (``SELECT ... FOR UPDATE``) for the
attempt, so parallel guesses cannot lose counter increments.

What a client is told
---------------------
The client must not learn whether a username exists. An unknown name, a wrong
password, and a wrong password for a disabled account all answer 401 with
``details.reason = "invalid_credentials"`` (the precise :class:`AuthReason`
goes to the audit log only), take one hash verification each, and count
towards a lockout: failures for names without an account are counted in
``login_failures``, so they lock (423) after the same number of attempts as a
real account. Only someone who knows the password learns more (disabled
account, MFA code needed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rtcc.errors import AuthError, Conflict, LockedOut, NotFound, RtccError, ValidationFailed
from rtcc.oversight.mfa import CodeCheck, accept_login_code
from rtcc.oversight.passwords import (
    check_password_policy,
    hash_password,
    needs_rehash,
    spend_verification,
    verify_password,
)
from rtcc.oversight.sessions import MFA_REQUIRED_KEY, revoke_all_for_user
from rtcc.roles import Role
from rtcc.store.tables import LoginFailure, SystemSetting, User

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")

UserRef = User | int | str
"""An account given as the row, its id, or its username."""

GENERIC_FAILURE = "invalid username or password"
INVALID_CREDENTIALS = "invalid_credentials"
"""The one ``details.reason`` a client gets for an unknown name or a wrong password."""


def normalize_username(username: str) -> str:
    """The stored form of ``username`` (trimmed, lower-case)."""
    return username.strip().lower()


def _check_username(username: str) -> str:
    name = normalize_username(username)
    if not USERNAME_RE.match(name):
        raise ValidationFailed(
            "username must be 1-64 characters: letters, digits, '.', '_', '-' or '@', "
            "starting with a letter or digit"
        )
    return name


def _check_role(role: Role | str) -> Role:
    try:
        r = Role(role)
    except ValueError:
        allowed = ", ".join(r.value for r in Role if r is not Role.public)
        raise ValidationFailed(f"unknown role {role!r}; one of: {allowed}") from None
    if r is Role.public:
        raise ValidationFailed("'public' is not a role a person can hold")
    return r


def _clean_display_name(display_name: str) -> str:
    name = display_name.strip()
    if len(name) > 128:
        raise ValidationFailed("display name must be at most 128 characters")
    return name


# --- accounts -------------------------------------------------------------------


def create_user(
    session: Session,
    username: str,
    password: str,
    role: Role | str,
    display_name: str = "",
    *,
    check_policy: bool = True,
) -> User:
    """Create an account.

    Raises
    ------
    ValidationFailed
        Bad username, role (``public`` included), display name or password.
    Conflict
        When the username is taken.
    """
    name = _check_username(username)
    r = _check_role(role)
    shown = _clean_display_name(display_name) or name
    if check_policy:
        check_password_policy(password, username=name)
    if get_user(session, name) is not None:
        raise Conflict(f"username {name!r} is taken")
    user = User(
        username=name,
        display_name=shown,
        role=r.value,
        password_hash=hash_password(password),
        totp_secret=None,
        mfa_enabled=False,
        failed_logins=0,
        locked_until=None,
        disabled=False,
    )
    session.add(user)
    # Failures counted while the name had no account are not the new person's.
    session.execute(delete(LoginFailure).where(LoginFailure.username == name))
    try:
        session.flush()
    except IntegrityError:
        # A concurrent create won the race; the transaction must be rolled back
        # (Store.run does so when the exception leaves it).
        raise Conflict(f"username {name!r} is taken") from None
    return user


def get_user(session: Session, username: str) -> User | None:
    """The account named ``username`` (case-insensitive), or ``None``."""
    return session.scalars(select(User).where(User.username == normalize_username(username))).first()


def get_user_by_id(session: Session, user_id: int) -> User | None:
    """The account with id ``user_id``, or ``None``."""
    return session.get(User, user_id)


def require_user(session: Session, ref: UserRef) -> User:
    """The account ``ref`` names.

    Raises
    ------
    NotFound
        When there is no such account.
    """
    if isinstance(ref, User):
        return ref
    user = get_user_by_id(session, ref) if isinstance(ref, int) else get_user(session, ref)
    if user is None:
        raise NotFound(f"no user {ref!r}")
    return user


def list_users(session: Session, *, include_disabled: bool = True) -> list[User]:
    """Every account, by username."""
    stmt = select(User)
    if not include_disabled:
        stmt = stmt.where(User.disabled.is_(False))
    return list(session.scalars(stmt.order_by(User.username)))


def count_users(session: Session) -> int:
    """How many accounts exist (0 means the first admin must be created)."""
    return int(session.scalar(select(func.count()).select_from(User)) or 0)


def _enabled_admins(session: Session) -> list[User]:
    stmt = select(User).where(User.role == Role.admin.value, User.disabled.is_(False))
    if session.get_bind().dialect.name == "postgresql":
        # Lock them: two admins disabling each other at once must not both succeed.
        stmt = stmt.with_for_update()
    return list(session.scalars(stmt))


def _keep_an_admin(session: Session, user: User, change: str) -> None:
    """Refuse a change that would leave no enabled admin (only the CLI could then make one)."""
    if user.role != Role.admin.value or user.disabled:
        return
    if all(a.id == user.id for a in _enabled_admins(session)):
        raise Conflict(
            f"cannot {change} {user.username!r}: it is the last enabled admin; "
            "make another account admin first"
        )


def set_role(session: Session, user: UserRef, role: Role | str) -> User:
    """Give an account another role.

    Raises
    ------
    ValidationFailed
        Unknown roles and ``public``.
    Conflict
        When this would demote the last enabled admin.
    """
    u = require_user(session, user)
    r = _check_role(role)
    if r is not Role.admin:
        _keep_an_admin(session, u, "demote")
    u.role = r.value
    session.flush()
    return u


def set_display_name(session: Session, user: UserRef, display_name: str) -> User:
    """Change the name shown for an account."""
    u = require_user(session, user)
    u.display_name = _clean_display_name(display_name) or u.username
    session.flush()
    return u


def disable(session: Session, user: UserRef, *, disabled: bool = True) -> User:
    """Disable (or, with ``disabled=False``, re-enable) an account.

    Disabling also ends every session of the account.

    Raises
    ------
    Conflict
        When this would disable the last enabled admin.
    """
    u = require_user(session, user)
    if disabled:
        _keep_an_admin(session, u, "disable")
    u.disabled = disabled
    session.flush()
    if disabled:
        revoke_all_for_user(session, u.id)
    return u


def enable(session: Session, user: UserRef) -> User:
    """Re-enable a disabled account."""
    return disable(session, user, disabled=False)


def unlock(session: Session, user: UserRef) -> User:
    """Lift a lockout and reset the failed-login counter (an admin action)."""
    u = require_user(session, user)
    u.failed_logins = 0
    u.locked_until = None
    session.flush()
    return u


def set_password(
    session: Session,
    user: UserRef,
    password: str,
    *,
    check_policy: bool = True,
    revoke_sessions: bool = True,
    keep_session_hash: str | None = None,
) -> User:
    """Set an account's password, lift any lockout, and end its sessions.

    ``keep_session_hash`` spares one session (the person changing their own
    password stays signed in).

    Raises
    ------
    ValidationFailed
        When the password breaks the policy.
    """
    u = require_user(session, user)
    if check_policy:
        check_password_policy(password, username=u.username)
    u.password_hash = hash_password(password)
    u.failed_logins = 0
    u.locked_until = None
    session.flush()
    if revoke_sessions:
        revoke_all_for_user(session, u.id, except_token_hash=keep_session_hash)
    return u


def change_own_password(
    session: Session,
    user: UserRef,
    current: str,
    new: str,
    *,
    keep_session_hash: str | None,
    now: datetime,
    lockout_attempts: int,
    lockout_minutes: float,
) -> RtccError | None:
    """A person changes their own password: the current one must match.

    A wrong current password counts as a failed login (a stolen session must
    not be a way to guess the password) and locks the account like one, which
    also ends its sessions. The session making a change stays signed in; every
    other one ends.

    Returns
    -------
    RtccError or None
        The refusal to raise *after* the transaction commits (so the failure
        count is kept): :class:`ValidationFailed` for a wrong current password
        or a new one that breaks the policy, :class:`LockedOut` when the
        failures just locked the account; None when the password changed.
    """
    u = require_user(session, user)
    if not verify_password(u.password_hash, current):
        message, locked_until = _count_failure(
            u, "the current password is wrong", now=now, attempts=lockout_attempts, minutes=lockout_minutes
        )
        session.flush()
        if locked_until is not None:
            revoke_all_for_user(session, u.id)
            return LockedOut(message, details={"locked_until": _iso(locked_until)})
        return ValidationFailed(message, details={"field": "current_password"})
    if new == current:
        return ValidationFailed(
            "the new password is the current one; choose another", details={"field": "new_password"}
        )
    try:
        check_password_policy(new, username=u.username)
    except ValidationFailed as exc:
        return exc
    set_password(session, u, new, check_policy=False, keep_session_hash=keep_session_hash)
    return None


# --- system settings ---------------------------------------------------------------


def get_system_setting(session: Session, key: str, default: Any = None) -> Any:
    """The value of the runtime switch ``key``, or ``default`` when unset."""
    row = session.get(SystemSetting, key)
    return default if row is None else row.value


def set_system_setting(session: Session, key: str, value: Any) -> None:
    """Set the runtime switch ``key`` to a JSON value."""
    if not key or len(key) > 64:
        raise ValidationFailed("setting key must be 1-64 characters")
    row = session.get(SystemSetting, key)
    if row is None:
        session.add(SystemSetting(key=key, value=value))
    else:
        row.value = value
    session.flush()


def mfa_required(session: Session, default: bool) -> bool:
    """Whether the admin switch requires MFA of everyone (``default`` when never set)."""
    value = get_system_setting(session, MFA_REQUIRED_KEY)
    return default if value is None else bool(value)


# --- login ---------------------------------------------------------------------------


class AuthReason(StrEnum):
    """Why a login attempt ended the way it did (for the audit log; see :attr:`AuthOutcome.client_reason`)."""

    ok = "ok"
    unknown_user = "unknown_user"
    bad_password = "bad_password"
    mfa_code_required = "mfa_code_required"
    bad_mfa_code = "bad_mfa_code"
    reused_mfa_code = "reused_mfa_code"
    locked = "locked"
    disabled = "disabled"


_MFA_REASONS = (AuthReason.mfa_code_required, AuthReason.bad_mfa_code, AuthReason.reused_mfa_code)


@dataclass(frozen=True)
class AuthOutcome:
    """The result of :func:`authenticate`.

    ``user`` is set whenever the username exists (also on failure, so the
    attempt can be audited against the account); ``locked_until`` is set when
    the account is (or just became) locked; ``mfa_enrolment_required`` means
    the login succeeded but the person must enrol in MFA before anything else;
    ``mfa_verified`` that a TOTP code was checked; ``password_ok`` that the
    password was right (it decides what a disabled account's failure reveals).
    """

    ok: bool
    reason: AuthReason
    username: str
    message: str
    user: User | None = None
    locked_until: datetime | None = None
    mfa_enrolment_required: bool = False
    mfa_verified: bool = False
    password_ok: bool = False

    @property
    def client_reason(self) -> str:
        """The ``details.reason`` the client sees: the same for an unknown name and a wrong password."""
        if self.reason in (AuthReason.unknown_user, AuthReason.bad_password):
            return INVALID_CREDENTIALS
        if self.reason is AuthReason.disabled and not self.password_ok:
            return INVALID_CREDENTIALS
        return self.reason.value

    def error(self) -> AuthError | None:
        """The exception to raise for a failed attempt (``None`` when it succeeded)."""
        if self.ok:
            return None
        if self.reason is AuthReason.locked:
            return LockedOut(
                self.message,
                details={"locked_until": _iso(self.locked_until)},
            )
        details: dict[str, Any] = {"reason": self.client_reason}
        if self.reason in _MFA_REASONS:
            details["mfa_required"] = True
        if self.locked_until is not None:
            details["locked_until"] = _iso(self.locked_until)
        return AuthError(self.message, details=details)

    def raise_for_failure(self) -> User:
        """The signed-in user, or raise :meth:`error` (call after the transaction)."""
        err = self.error()
        if err is not None:
            raise err
        assert self.user is not None
        return self.user


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat(timespec="seconds")


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _lock_user(session: Session, name: str) -> User | None:
    stmt = select(User).where(User.username == name)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def _lock_failures(session: Session, name: str, now: datetime) -> LoginFailure:
    """The failure counter of a name without an account, created if needed, locked on PostgreSQL."""
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        # Insert-or-nothing, so parallel first guesses at one name do not collide on the key.
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        session.execute(
            insert(LoginFailure)
            .values(username=name, failed_logins=0, locked_until=None, updated_at=now)
            .on_conflict_do_nothing(index_elements=["username"])
        )
    stmt = select(LoginFailure).where(LoginFailure.username == name)
    if dialect == "postgresql":
        stmt = stmt.with_for_update()
    row = session.scalars(stmt).first()
    if row is None:
        row = LoginFailure(username=name, failed_logins=0, locked_until=None, updated_at=now)
        session.add(row)
    return row


def _locked_message(until: datetime) -> str:
    return (
        f"account locked after too many failed logins; try again after "
        f"{_when(until)}, or ask an administrator to unlock it"
    )


def _count_failure(
    counter: User | LoginFailure, message: str, *, now: datetime, attempts: int, minutes: float
) -> tuple[str, datetime | None]:
    """Count one failed login on ``counter``; the message and, when it just locked, the lock's end."""
    if counter.locked_until is not None and counter.locked_until <= now:
        counter.locked_until = None
    counter.failed_logins = (counter.failed_logins or 0) + 1
    if counter.failed_logins < attempts:
        return message, None
    locked_until = now + timedelta(minutes=minutes)
    counter.locked_until = locked_until
    counter.failed_logins = 0
    return f"{message}; too many failed logins, account locked until {_when(locked_until)}", locked_until


def authenticate(
    session: Session,
    username: str,
    password: str,
    totp_code: str | None,
    *,
    now: datetime,
    lockout_attempts: int = 5,
    lockout_minutes: float = 10,
    mfa_required_default: bool = False,
) -> AuthOutcome:
    """Check a login attempt, count failures, and say how it went.

    * Unknown username: a failure that still spends one hash verification, so
      it takes as long as a wrong password, and is counted and locked like one
      (in ``login_failures``), so the answers are the same as for an account.
    * Locked account (``locked_until > now``): a failure (``reason=locked``)
      whose message says when the lock lifts; the attempt is not counted.
    * Wrong password, or (for an account with MFA on) a missing, wrong or
      already used TOTP code: ``failed_logins`` goes up; on reaching
      ``lockout_attempts`` the account is locked for ``lockout_minutes`` and
      the counter starts again.
    * Disabled account: a failure; counted like a wrong password when the
      password is wrong (so it looks like any other name), not counted when
      it is right (the message then says the account is disabled).
    * Success resets the counter and clears an expired lock; when the
      ``mfa_required`` switch is on (``mfa_required_default`` when never set)
      and the account has no MFA, ``mfa_enrolment_required`` is set.

    Never raises for a failed login; see the module docstring.
    """
    name = normalize_username(username)
    valid_name = bool(USERNAME_RE.match(name))
    user = _lock_user(session, name) if valid_name else None
    if user is None:
        if not valid_name:
            # No account can have this name, so answering differently reveals nothing.
            spend_verification(password)
            return AuthOutcome(False, AuthReason.unknown_user, name, GENERIC_FAILURE)
        counter = _lock_failures(session, name, now)
        if counter.locked_until is not None and counter.locked_until > now:
            # Same answer as a locked account (which verifies no hash either).
            return AuthOutcome(
                False,
                AuthReason.locked,
                name,
                _locked_message(counter.locked_until),
                locked_until=counter.locked_until,
            )
        spend_verification(password)
        message, locked_until = _count_failure(
            counter, GENERIC_FAILURE, now=now, attempts=lockout_attempts, minutes=lockout_minutes
        )
        counter.updated_at = now
        session.flush()
        return AuthOutcome(False, AuthReason.unknown_user, name, message, locked_until=locked_until)

    if user.locked_until is not None and user.locked_until > now:
        return AuthOutcome(
            False,
            AuthReason.locked,
            name,
            _locked_message(user.locked_until),
            user=user,
            locked_until=user.locked_until,
        )

    password_ok = verify_password(user.password_hash, password)

    if user.disabled and password_ok:
        return AuthOutcome(
            False,
            AuthReason.disabled,
            name,
            "this account is disabled; ask an administrator",
            user=user,
            password_ok=True,
        )

    reason: AuthReason | None = None
    message = GENERIC_FAILURE
    if not password_ok:
        reason = AuthReason.disabled if user.disabled else AuthReason.bad_password
    elif user.mfa_enabled:
        if not totp_code:
            reason, message = AuthReason.mfa_code_required, "a one-time code is required"
        else:
            check = accept_login_code(user, totp_code, now=now)
            if check is CodeCheck.invalid:
                reason, message = AuthReason.bad_mfa_code, "invalid one-time code"
            elif check is CodeCheck.reused:
                reason = AuthReason.reused_mfa_code
                message = "that one-time code was already used; wait for the next code"

    if reason is not None:
        message, locked_until = _count_failure(
            user, message, now=now, attempts=lockout_attempts, minutes=lockout_minutes
        )
        session.flush()
        return AuthOutcome(
            False, reason, name, message, user=user, locked_until=locked_until, password_ok=password_ok
        )

    user.failed_logins = 0
    user.locked_until = None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    session.flush()
    enrol = not user.mfa_enabled and mfa_required(session, mfa_required_default)
    return AuthOutcome(
        True,
        AuthReason.ok,
        name,
        "signed in" if not enrol else "signed in; enrol in multi-factor authentication",
        user=user,
        mfa_enrolment_required=enrol,
        mfa_verified=user.mfa_enabled,
        password_ok=True,
    )
