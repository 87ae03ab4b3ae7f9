"""The public transparency page's data."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["transparency"])
