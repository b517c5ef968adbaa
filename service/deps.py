"""Typed dependencies, in one place: the settings, the database and a read session, the
caller (who :class:`service.auth.middleware.Authenticate` found the request is from).

A read session begins a deferred transaction (a snapshot, no lock) and is rolled back when
the endpoint returns. Writes do not come from a dependency: an endpoint that writes opens
``db.write_session()`` itself, so the transaction begins and commits inside one call in one
thread. A yield-dependency would begin it in one threadpool task and commit it in another;
under load every pool thread can then be waiting for SQLite's write lock while the holder
waits for a free thread to commit — a deadlock that only the busy timeout breaks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from service.errors import Unauthorized
from store.accounts import Caller
from store.db import Database
from store.settings import Settings


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def database_of(request: Request) -> Database:
    return request.app.state.db


def caller_of(request: Request) -> Caller:
    """Who the request is from: set by the authentication middleware before any route runs
    (the ``local`` admin with GRADLAB_AUTH=off)."""
    caller = getattr(request.state, "caller", None)
    if caller is None:  # only for a route outside /v1 that asks who is calling
        raise Unauthorized("This needs an API token: send Authorization: Bearer TOKEN.")
    return caller


# async: FastAPI would run a plain function in its threadpool, a hop per request. The API's
# hottest read takes the request and calls the two functions above itself: each dependency
# FastAPI solves costs ~20 µs a request.
async def get_database(request: Request) -> Database:
    return database_of(request)


async def get_caller(request: Request) -> Caller:
    return caller_of(request)


def get_read_session(request: Request) -> Iterator[Session]:
    with request.app.state.db.read_session() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
CallerDep = Annotated[Caller, Depends(get_caller)]
ReadSessionDep = Annotated[Session, Depends(get_read_session, scope="function")]
