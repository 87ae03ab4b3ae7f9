"""The library's exception tree, mapped to the API's one error envelope at the boundary.

::

    RtccError
     ├── ConfigError            settings file or environment is invalid
     ├── ValidationFailed       input that is well-formed but not acceptable (422)
     ├── NotFound               a record that does not exist (404)
     ├── Conflict               duplicate or state conflict (409)
     ├── AuthError              missing or bad credentials (401)
     │    └── LockedOut         too many failed logins (423)
     ├── Forbidden              authenticated but not allowed (403)
     ├── PayloadTooLarge        request body over the configured limit (413)
     ├── RateLimited            too many requests (429)
     └── Unavailable            a dependency (store, bus) is down (503)
"""

from __future__ import annotations

from typing import Any


class RtccError(Exception):
    """Base of every error the center raises on purpose."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ConfigError(RtccError):
    status = 500
    code = "config_error"


class ValidationFailed(RtccError):
    status = 422
    code = "validation_failed"


class NotFound(RtccError):
    status = 404
    code = "not_found"


class Conflict(RtccError):
    status = 409
    code = "conflict"


class AuthError(RtccError):
    status = 401
    code = "unauthenticated"


class LockedOut(AuthError):
    status = 423
    code = "locked_out"


class Forbidden(RtccError):
    status = 403
    code = "forbidden"


class PayloadTooLarge(RtccError):
    status = 413
    code = "payload_too_large"


class RateLimited(RtccError):
    status = 429
    code = "rate_limited"


class Unavailable(RtccError):
    status = 503
    code = "unavailable"
