"""Parameters of the timeline, list and marker endpoints."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from townsquare.api.params import as_list

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
RepliesPolicy = Literal["followed", "list", "none"]
Names = Annotated[
    list[Annotated[str, StringConstraints(max_length=100)]],
    BeforeValidator(as_list),
    Field(max_length=20),
]
Ids = Annotated[list[int], BeforeValidator(as_list)]


class _Params(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PublicQuery(_Params):
    local: bool = False
    remote: bool = False
    only_media: bool = False


class TagQuery(PublicQuery):
    any: Names = []
    all: Names = []
    none: Names = []


class ListDraft(_Params):
    title: Title
    replies_policy: RepliesPolicy = "list"
    exclusive: bool = False


class ListChanges(_Params):
    title: Title | None = None
    replies_policy: RepliesPolicy | None = None
    exclusive: bool | None = None


class ListMembers(_Params):
    account_ids: Ids


class MarkerPosition(_Params):
    last_read_id: Annotated[int, Field(ge=0, lt=2**63)]


class MarkerUpdate(_Params):
    home: MarkerPosition | None = None
    notifications: MarkerPosition | None = None

    def positions(self) -> dict[str, int]:
        chosen: dict[str, Any] = {"home": self.home, "notifications": self.notifications}
        return {name: p.last_read_id for name, p in chosen.items() if p is not None}
