"""Tables: cameras, community registrations, footage requests (issue 4)."""

from __future__ import annotations

from rtcc.store.tables import Base

__all__ = ["Base"]
