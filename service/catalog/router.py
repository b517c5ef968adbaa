"""``GET /v1/catalog``: what a spec may say, and a job's statuses, for forms and clients.

Everything here is derived: the kinds, losses, options and defaults from the engine's
catalog (``engine.catalog``), the statuses from the lifecycle (``store.lifecycle``).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import APIRouter

from engine import catalog
from store.status import TERMINAL, Status

router = APIRouter(prefix="/v1", tags=["catalog"])


@cache
def _catalog() -> dict[str, Any]:
    return {
        **catalog.describe(),
        "statuses": {"all": [s.value for s in Status], "terminal": [s.value for s in TERMINAL]},
    }


@router.get(
    "/catalog",
    summary="What gradlab can train, with every default, and a job's statuses",
    description="Models (the losses each takes, its default loss, those Newton's method "
    "trains, its options), losses (the targets they need, their options), activations, "
    "optimizers, initialisations and datasets, each with its options' defaults; and the "
    "statuses a job can have, with the terminal ones.",
)
def get_catalog() -> dict[str, Any]:
    return _catalog()
