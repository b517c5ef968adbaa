"""The web dashboard: one HTML page at ``/`` and its static files under ``/ui/``.

The page is a small vanilla-JS app (no build step) that talks to the JSON API with relative
URLs, so it also works behind a path prefix. Its one library, uPlot, is vendored under
``static/vendor/uplot`` and shipped in the package: nothing is fetched from the internet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
NO_CACHE = {"Cache-Control": "no-cache"}  # revalidate (ETag) so an upgrade is seen at once


class _RevalidatedFiles(StaticFiles):
    """Static files a browser must revalidate before reuse (cheap: a 304 when unchanged)."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.update(NO_CACHE)
        return response


router = APIRouter(include_in_schema=False)
router.mount("/ui", _RevalidatedFiles(directory=STATIC), name="dashboard-static")


@router.get("/")
def dashboard() -> FileResponse:
    """The single page; hash routes (``#/jobs/<id>``, ``#/new``, …) pick the view."""
    return FileResponse(STATIC / "index.html", headers=NO_CACHE)
