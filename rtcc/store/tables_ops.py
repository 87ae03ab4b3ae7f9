"""Tables: alert queue, cases, outcomes, packets (issue 5)."""

from __future__ import annotations

from rtcc.store.tables import Base

__all__ = ["Base"]
