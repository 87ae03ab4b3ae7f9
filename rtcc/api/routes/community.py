"""Public community-camera registration (no account)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["community"])
