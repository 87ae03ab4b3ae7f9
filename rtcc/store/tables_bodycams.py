"""Tables: body-cam commands and activation policies (issue 4)."""

from __future__ import annotations

from rtcc.store.tables import Base

__all__ = ["Base"]
