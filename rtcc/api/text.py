"""Free text that the audit log keeps (reasons for decisions): it must say something.

A reason of spaces, or of zero-width and other invisible characters, passes a plain length check and
leaves nothing in the audit log. :data:`Reason` strips surrounding whitespace and counts only
visible characters (not Unicode separators, control or format characters) against ``min_length``.

It also refuses control characters (Unicode category ``Cc``: NUL, escape, delete …) other than
tab, newline and carriage return, with a 422 before anything is written: the audit log refuses a
NUL, and the routes write the change before its audit entry, so such a reason left a committed change with no
audit entry (and the client a 422).
"""

from __future__ import annotations

import unicodedata
from functools import partial
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

_INVISIBLE = ("Z", "C")  # separators (Zs, Zl, Zp) and other (Cc control, Cf format such as U+200B)
_ALLOWED_CONTROLS = frozenset("\t\n\r")


def no_controls(value: str) -> str:
    """``value`` unchanged; ValueError (a 422) when it holds a control character other than a tab
    or a line break (LF, CR)."""
    bad = sorted({ch for ch in value if unicodedata.category(ch) == "Cc" and ch not in _ALLOWED_CONTROLS})
    if bad:
        shown = ", ".join(f"U+{ord(ch):04X}" for ch in bad[:5])
        raise ValueError(f"must not hold control characters ({shown}); only tabs and line breaks are allowed")
    return value


def _visible(min_length: int, value: str) -> str:
    no_controls(value)
    shown = sum(1 for ch in value if not unicodedata.category(ch).startswith(_INVISIBLE))
    if shown < min_length:
        raise ValueError(f"must hold at least {min_length} visible characters (not only spaces)")
    return value


def _audited(min_length: int, max_length: int) -> tuple[StringConstraints, AfterValidator]:
    return (
        StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length),
        AfterValidator(partial(_visible, min_length)),
    )


Reason = Annotated[str, *_audited(3, 1000)]
"""A reason for a decision (review, dismissal, hit decision, closing a case): whitespace stripped,
at most 1,000 characters, at least 3 visible."""
Reason500 = Annotated[str, *_audited(3, 500)]
Reason2000 = Annotated[str, *_audited(3, 2000)]
