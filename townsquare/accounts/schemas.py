"""The shapes account endpoints accept, validated before anything is written."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field, field_validator

from townsquare.accounts.profile import (
    MAX_DISPLAY_NAME,
    MAX_FIELD_NAME,
    MAX_FIELD_VALUE,
    MAX_FIELDS,
    MAX_NOTE,
    VISIBILITIES,
    ProfileChanges,
    ProfileField,
)

_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


class RegistrationForm(BaseModel):
    username: str = Field(max_length=30)
    email: str = Field(max_length=320)
    password: str = Field(max_length=256)
    agreement: bool = False
    locale: str = Field("en", max_length=16)
    reason: str | None = Field(None, max_length=1000)

    @field_validator("agreement")
    @classmethod
    def _agreed(cls, value: bool) -> bool:
        if not value:
            raise ValueError("you must agree to the server rules")
        return value


class FieldAttribute(BaseModel):
    name: str = Field("", max_length=MAX_FIELD_NAME)
    value: str = Field("", max_length=MAX_FIELD_VALUE)


class SourceForm(BaseModel):
    privacy: str | None = None
    sensitive: bool | None = None
    language: str | None = None

    @field_validator("privacy")
    @classmethod
    def _privacy(cls, value: str | None) -> str | None:
        if value is not None and value not in VISIBILITIES:
            raise ValueError(f"must be one of {', '.join(VISIBILITIES)}")
        return value

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        if value and not _LANGUAGE.match(value):
            raise ValueError("must be an ISO 639 language code")
        return value


class CredentialsForm(BaseModel):
    display_name: str | None = Field(None, max_length=MAX_DISPLAY_NAME)
    note: str | None = Field(None, max_length=MAX_NOTE)
    locked: bool | None = None
    bot: bool | None = None
    discoverable: bool | None = None
    indexable: bool | None = None
    # Rails-style ``fields_attributes[0][name]`` arrives as a dict keyed by position; JSON
    # clients send a list.
    fields_attributes: dict[str, FieldAttribute] | list[FieldAttribute] | None = None
    source: SourceForm | None = None

    @field_validator("fields_attributes")
    @classmethod
    def _at_most_four(cls, value: Any) -> Any:
        if value is not None and len(value) > MAX_FIELDS:
            raise ValueError(f"at most {MAX_FIELDS} fields")
        return value

    def changes(self) -> ProfileChanges:
        fields: list[ProfileField] | None = None
        if self.fields_attributes is not None:
            attributes = self.fields_attributes
            if isinstance(attributes, dict):
                ordered = sorted(attributes.items(), key=lambda item: _position(item[0]))
                attributes = [attribute for _, attribute in ordered]
            fields = [
                ProfileField(name=a.name.strip(), value=a.value.strip())
                for a in attributes
                if a.name.strip() or a.value.strip()
            ]
        source = self.source or SourceForm()
        return ProfileChanges(
            display_name=self.display_name.strip() if self.display_name is not None else None,
            note=self.note,
            locked=self.locked,
            bot=self.bot,
            discoverable=self.discoverable,
            indexable=self.indexable,
            fields=fields,
            privacy=source.privacy,
            sensitive=source.sensitive,
            language=source.language,
        )


def _position(key: str) -> int:
    return int(key) if key.isdigit() else 0
