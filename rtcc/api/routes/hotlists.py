"""Hotlists: imports, BOLO entries, hits and their confirmation."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["hotlists"])
