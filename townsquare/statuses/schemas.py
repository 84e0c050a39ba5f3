"""What clients send to the statuses endpoints, validated before anything is written."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from townsquare.api.params import as_list

Visibility = Literal["public", "unlisted", "private", "direct"]
# Mastodon's bounds: polls run for five minutes to a month.
POLL_MIN_SECONDS = 300
POLL_MAX_SECONDS = 30 * 24 * 3600
MAX_SPOILER_CHARS = 10_000
MAX_OPTION_CHARS = 50


def _optional_id(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("must be an id")
    try:
        number = int(str(value))
    except ValueError:
        raise ValueError("must be an id") from None
    if number <= 0 or number >= 2**63:
        raise ValueError("must be an id")
    return number


def _id_list(value: Any) -> list[int]:
    ids = []
    for item in as_list(value):
        number = _optional_id(item)
        if number is not None:
            ids.append(number)
    return ids


def _boolean(value: Any) -> Any:
    # Rails-style forms send booleans as strings; Mastodon accepts these spellings.
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "on", "yes", "t"):
            return True
        if lowered in ("false", "0", "off", "no", "f", ""):
            return False
    return value


class PollDraft(BaseModel):
    model_config = ConfigDict(extra="ignore")

    options: list[str] = Field(min_length=2)
    expires_in: int = Field(ge=POLL_MIN_SECONDS, le=POLL_MAX_SECONDS)
    multiple: bool = False
    hide_totals: bool = False

    @field_validator("options", mode="before")
    @classmethod
    def _options(cls, value: Any) -> list[Any]:
        return as_list(value)

    @field_validator("options")
    @classmethod
    def _option_text(cls, options: list[str]) -> list[str]:
        cleaned = [option.strip() for option in options]
        if any(not option for option in cleaned):
            raise ValueError("poll options must not be blank")
        if any(len(option) > MAX_OPTION_CHARS for option in cleaned):
            raise ValueError(f"poll options must be at most {MAX_OPTION_CHARS} characters")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("poll options must be different")
        return cleaned

    @field_validator("multiple", "hide_totals", mode="before")
    @classmethod
    def _flags(cls, value: Any) -> Any:
        return _boolean(value)


class StatusDraft(BaseModel):
    """POST /api/v1/statuses."""

    model_config = ConfigDict(extra="ignore")

    status: str = ""
    media_ids: list[int] = Field(default_factory=list)
    poll: PollDraft | None = None
    in_reply_to_id: int | None = None
    quoted_status_id: int | None = None
    quote_id: int | None = None
    sensitive: bool | None = None
    spoiler_text: str = Field("", max_length=MAX_SPOILER_CHARS)
    visibility: Visibility | None = None
    language: str | None = Field(None, max_length=16)
    scheduled_at: dt.datetime | None = None

    @field_validator("status", "spoiler_text", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return "" if value is None else value

    @field_validator("media_ids", mode="before")
    @classmethod
    def _media(cls, value: Any) -> list[int]:
        return _id_list(value)

    @field_validator("in_reply_to_id", "quoted_status_id", "quote_id", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> int | None:
        return _optional_id(value)

    @field_validator("sensitive", mode="before")
    @classmethod
    def _sensitive(cls, value: Any) -> Any:
        return _boolean(value)

    @field_validator("visibility", "language", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("poll", mode="before")
    @classmethod
    def _no_poll(cls, value: Any) -> Any:
        # Some clients send an empty poll object (or poll[options][] with nothing) for "no poll".
        if value in (None, "", {}) or (isinstance(value, dict) and not value.get("options")):
            return None
        return value

    @property
    def quote_target_id(self) -> int | None:
        return self.quoted_status_id or self.quote_id


class MediaChanges(BaseModel):
    """One entry of ``media_attributes``: new words for an image the status already has."""

    model_config = ConfigDict(extra="ignore")

    id: int
    description: str | None = None
    focus: str | None = None


class StatusChanges(BaseModel):
    """PUT /api/v1/statuses/:id: the new text and what goes with it."""

    model_config = ConfigDict(extra="ignore")

    status: str = ""
    spoiler_text: str = Field("", max_length=MAX_SPOILER_CHARS)
    sensitive: bool | None = None
    language: str | None = Field(None, max_length=16)
    media_ids: list[int] | None = None
    media_attributes: list[MediaChanges] = Field(default_factory=list, max_length=16)
    poll: PollDraft | None = None

    @field_validator("status", "spoiler_text", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return "" if value is None else value

    @field_validator("media_ids", mode="before")
    @classmethod
    def _media(cls, value: Any) -> list[int] | None:
        return None if value is None else _id_list(value)

    @field_validator("media_attributes", mode="before")
    @classmethod
    def _media_attributes(cls, value: Any) -> Any:
        # Forms may number the entries (media_attributes[0][id]=...) instead of listing them.
        if isinstance(value, dict):
            return [value[key] for key in sorted(value, key=lambda k: (len(k), k))]
        return value

    @field_validator("sensitive", mode="before")
    @classmethod
    def _sensitive(cls, value: Any) -> Any:
        return _boolean(value)

    @field_validator("language", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("poll", mode="before")
    @classmethod
    def _no_poll(cls, value: Any) -> Any:
        if value in (None, "", {}) or (isinstance(value, dict) and not value.get("options")):
            return None
        return value


class VoteDraft(BaseModel):
    model_config = ConfigDict(extra="ignore")

    choices: list[int] = Field(min_length=1)

    @field_validator("choices", mode="before")
    @classmethod
    def _choices(cls, value: Any) -> list[Any]:
        return as_list(value)


class ReblogDraft(BaseModel):
    model_config = ConfigDict(extra="ignore")

    visibility: Literal["public", "unlisted", "private"] | None = None

    @field_validator("visibility", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if value == "" else value


class AccountStatusesQuery(BaseModel):
    """GET /api/v1/accounts/:id/statuses filters."""

    model_config = ConfigDict(extra="ignore")

    only_media: bool = False
    exclude_replies: bool = False
    exclude_reblogs: bool = False
    pinned: bool = False
    tagged: str | None = Field(None, max_length=100)

    @field_validator("only_media", "exclude_replies", "exclude_reblogs", "pinned", mode="before")
    @classmethod
    def _flags(cls, value: Any) -> Any:
        return _boolean(value)
