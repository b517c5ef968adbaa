"""The API document's account of authentication: a ``bearer`` security scheme (Swagger UI's
*Authorize* button takes the token) and, with GRADLAB_AUTH=required, on every ``/v1``
operation the scheme and its ``401`` answer."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from service.auth.middleware import protected

SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API token from `gradlab users add` or `gradlab users token`.",
}
UNAUTHORIZED = {
    "description": "No token, or one that is unknown or revoked (`WWW-Authenticate: Bearer`).",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
}


def document(app: FastAPI, *, required: bool) -> None:
    """Have ``app.openapi()`` describe the bearer tokens (``required``: on every /v1 route)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = SCHEME
        if required:
            for path, operations in schema["paths"].items():
                if not protected(path):
                    continue
                for operation in operations.values():
                    operation["security"] = [{"bearer": []}]
                    operation.setdefault("responses", {}).setdefault("401", UNAUTHORIZED)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
