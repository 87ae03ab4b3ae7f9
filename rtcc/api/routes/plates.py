"""Plate reads: camera image upload, search, track, co-travel."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["plates"])
