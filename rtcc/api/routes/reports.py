"""Reports, exports, CAP and the dispatch feed."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["reports"])
