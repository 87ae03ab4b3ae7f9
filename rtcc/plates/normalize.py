"""Plate text normalization: the one form plates are stored, matched and compared in."""

from __future__ import annotations

import re
import unicodedata

_KEEP = re.compile(r"[^0-9A-Z]")
_KEEP_WILD = re.compile(r"[^0-9A-Z?*]")


def normalize_plate(text: str, *, wildcards: bool = False) -> str:
    """Uppercase, accents folded, and everything but ``0-9A-Z`` removed.

    With ``wildcards`` the hotlist wildcards ``?`` (one character) and ``*``
    (any run) are kept too.

    Examples
    --------
    >>> normalize_plate(" abc-12 3 ")
    'ABC123'
    >>> normalize_plate("ÖZ·99")
    'OZ99'
    """
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return (_KEEP_WILD if wildcards else _KEEP).sub("", folded.upper())
