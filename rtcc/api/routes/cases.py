"""Cases, incident packets and the outcome ledger."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["cases"])
