"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response

import migrations as migrate
from service.deps import DatabaseDep
from service.errors import json_response

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get(
    "/readyz",
    summary="The database is reachable and its schema is at the migrations' head",
    responses={503: {"description": "Not ready: the body says why."}},
)
def readyz(db: DatabaseDep) -> Response:
    head = migrate.head_revision()
    try:
        current = migrate.current_revision(db.engine)
    except SQLAlchemyError as exc:
        return json_response({"status": "unavailable", "reason": f"database: {exc}"}, 503)
    if current != head:
        reason = f"schema at {current}, migrations at {head}; run `gradlab migrate`"
        return json_response({"status": "unavailable", "reason": reason}, 503)
    return json_response({"status": "ready", "revision": current})
