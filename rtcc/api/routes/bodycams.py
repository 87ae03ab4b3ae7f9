"""Body cams: registry, remote activation, policies."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["bodycams"])
