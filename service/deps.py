"""Typed dependencies, in one place: the settings, the database and its sessions.

A read session begins a deferred transaction and is rolled back when the request ends.
A write session takes SQLite's write lock when it begins, and commits when the endpoint
returns without error — before the response is sent, so a client never sees a 201 for a
row that did not commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from service.db import Database
from service.settings import Settings


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_database(request: Request) -> Database:
    # async: FastAPI would run a plain function in its threadpool, a hop per request.
    return request.app.state.db


def get_read_session(request: Request) -> Iterator[Session]:
    with request.app.state.db.read_session() as session:
        yield session


def get_write_session(request: Request) -> Iterator[Session]:
    with request.app.state.db.write_session() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
ReadSessionDep = Annotated[Session, Depends(get_read_session, scope="function")]
WriteSessionDep = Annotated[Session, Depends(get_write_session, scope="function")]
