"""Routes of this area (filled in by its capability; an empty router until then)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
