"""Tables: plate reads (issue 3)."""

from __future__ import annotations

from rtcc.store.tables import Base

__all__ = ["Base"]
