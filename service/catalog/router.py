"""``GET /v1/catalog``: what a spec may say, for forms and clients that build specs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from store.lifecycle import TERMINAL, Status

router = APIRouter(prefix="/v1", tags=["catalog"])


@router.get("/catalog", summary="What gradlab can train, and a job's statuses")
def get_catalog() -> dict[str, Any]:
    return {
        "statuses": {"all": [s.value for s in Status], "terminal": [s.value for s in TERMINAL]},
    }
