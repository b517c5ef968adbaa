"""Shapes of the accounts API."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from service.jobs.schemas import UtcTime
from store.accounts import NAME_PATTERN, NAME_RULE, Role

Name = Annotated[
    str, Field(pattern=NAME_PATTERN, description=f"The account's name: it {NAME_RULE}")
]


class Me(BaseModel):
    name: str
    role: Role


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    role: Role = Field(Role.STUDENT, description="An instructor may create students only.")


class User(BaseModel):
    name: str
    role: Role
    created_at: UtcTime
    tokens: int = Field(description="Live (unrevoked) API tokens.")


class CreatedUser(User):
    token: str = Field(
        description="The account's API token, shown this once: only its hash is kept."
    )


class Users(BaseModel):
    users: list[User]


class Revoked(BaseModel):
    name: str
    revoked: int = Field(description="How many live tokens stopped working.")
