"""The oversight room: who may sign in, who may send data, and what everyone did.

* :mod:`~rtcc.oversight.passwords` — Argon2id hashing, the password policy,
  generated passwords.
* :mod:`~rtcc.oversight.accounts` — people's accounts and roles, login with
  lockout after repeated failures, the admin switch that requires MFA.
* :mod:`~rtcc.oversight.mfa` — TOTP enrolment and codes.
* :mod:`~rtcc.oversight.sessions` — opaque session tokens (only their
  SHA-256 stored), idle expiry, revocation.
* :mod:`~rtcc.oversight.device_keys` — device registration, per-device keys
  scoped to the event types the device may publish, an in-process key cache.
* :mod:`~rtcc.oversight.audit` — the tamper-evident audit log: an HMAC hash
  chain that shows edited, inserted and deleted entries, with CSV export.

Every function here is synchronous and takes a :class:`sqlalchemy.orm.Session`
(the caller owns the transaction); async code runs them through
:meth:`rtcc.store.db.Store.read` / :meth:`~rtcc.store.db.Store.write`.
"""
