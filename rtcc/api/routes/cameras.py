"""Camera registry, visibility, footage requests, live view."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["cameras"])
